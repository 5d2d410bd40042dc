"""Eager reference of layer_epilogue: the specification every kernel is tested against.

StyleGAN's per-layer epilogue after each convolution, for ``x: [N, C, H, W]``:

1. ``t = x + noise_strength[c] * noise[n, 0, h, w]`` (skipped when ``noise_strength`` is None;
   ``noise`` is ``[N, 1, H, W]`` or ``[1, 1, H, W]``, broadcast over the batch),
2. ``u = lrelu(t + bias[c], alpha) * gain`` (``bias`` skipped when None;
   ``lrelu(v) = v if v > 0 else alpha * v``),
3. ``mean = mean_hw(u)``, ``var = mean_hw((u - mean)^2)``,
   ``u_hat = (u - mean) * rsqrt(var + eps)`` (instance norm, biased variance),
4. ``y = scale[n, c] * u_hat + style_bias[n, c]`` (the style's AdaIN affine).

fp16/bf16 inputs are upcast to float32 for all four steps (the statistics need it, and one
rounding at the end is what the kernels do too); ``y`` is cast back to ``x``'s dtype.

Plain torch throughout, so it is differentiable to any order. Imports only torch (and typing).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the epilogue computes in: float32 for fp16/bf16, else ``dtype`` itself."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class Activation(NamedTuple):
    """The terms of steps 1-2 (shapes as in the module docstring): ``noise`` (read only when
    ``noise_strength`` is given), ``noise_strength`` or None (no noise term), ``bias`` or None,
    and the leaky ReLU's negative slope ``alpha`` and output scale ``gain``."""

    noise: torch.Tensor | None
    noise_strength: torch.Tensor | None
    bias: torch.Tensor | None
    alpha: float
    gain: float


def activation(x: torch.Tensor, act: Activation) -> torch.Tensor:
    """Steps 1-2: ``u = lrelu(x + noise_strength * noise + bias, alpha) * gain``, returned in
    :func:`compute_dtype` of ``x``."""
    noise, noise_strength, bias, alpha, gain = act
    dtype = compute_dtype(x.dtype)
    t = x.to(dtype)
    if noise_strength is not None:
        t = t + noise_strength.to(dtype).reshape(1, -1, 1, 1) * noise.to(dtype)
    if bias is not None:
        t = t + bias.to(dtype).reshape(1, -1, 1, 1)
    return F.leaky_relu(t, alpha) * gain


def layer_epilogue(
    x: torch.Tensor,
    act: Activation,
    scale: torch.Tensor,
    style_bias: torch.Tensor,
    eps: float | torch.Tensor,
) -> torch.Tensor:
    """Reference layer epilogue (arguments already validated; noise already drawn): the public
    ``layer_epilogue(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps)`` with
    the terms of steps 1-2 in ``act``.

    Args:
        x: ``[N, C, H, W]``.
        act: steps 1-2's noise ``[N, 1, H, W]`` or ``[1, 1, H, W]``, noise_strength ``[C]`` or
            None, bias ``[C]`` or None, alpha and gain (:class:`Activation`).
        scale, style_bias: ``[N, C]``.
        eps: added to the variance; a float, or an ``[N, C]`` tensor (one value per plane,
            which the registered ops' higher-order backward uses to reproduce a saved
            ``rsqrt(var + eps)`` exactly).

    Returns:
        ``y: [N, C, H, W]`` in ``x``'s dtype.
    """
    u = activation(x, act)
    mean = u.mean(dim=(2, 3), keepdim=True)
    centered = u - mean
    var = centered.square().mean(dim=(2, 3), keepdim=True)
    if isinstance(eps, torch.Tensor):
        eps = eps.to(u.dtype).reshape(mean.shape)
    u_hat = centered * torch.rsqrt(var + eps)
    n, c = scale.shape
    y = scale.to(u.dtype).reshape(n, c, 1, 1) * u_hat + style_bias.to(u.dtype).reshape(n, c, 1, 1)
    return y.to(x.dtype)
