"""layer_epilogue: StyleGAN's per-layer epilogue (noise, bias, leaky ReLU, instance norm,
style) as one fused op."""

from __future__ import annotations

import math

import torch

from ... import _backend
from .. import _validation as v
from . import reference, registration

__all__ = ["layer_epilogue"]


def layer_epilogue(
    x: torch.Tensor,
    noise: torch.Tensor | None,
    noise_strength: torch.Tensor | None,
    bias: torch.Tensor | None,
    scale: torch.Tensor,
    style_bias: torch.Tensor,
    alpha: float = 0.2,
    gain: float = math.sqrt(2),
    eps: float = 1e-8,
    impl: str = "auto",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Noise, bias, leaky ReLU, instance norm and style modulation in one op.

    ``t = x + noise_strength[c] * noise[n, 0, h, w]``,
    ``u = lrelu(t + bias[c], alpha) * gain``,
    ``y = scale[n, c] * (u - mean_hw(u)) * rsqrt(var_hw(u) + eps) + style_bias[n, c]``
    (biased variance), differentiable to any order (the fast kernels serve the forward and the
    first backward; higher orders differentiate the reference). Statistics are computed in
    float32 for fp16/bf16 inputs (float64 for float64).

    Args:
        x: ``[N, C, H, W]``; any memory format; fp16/bf16/fp32/fp64.
        noise: ``[N, 1, H, W]``, or ``[1, 1, H, W]`` shared by the batch, or None to draw
            fresh standard-normal ``[N, 1, H, W]`` noise from ``generator``. Ignored when
            ``noise_strength`` is None.
        noise_strength: ``[C]``, or None for no noise term.
        bias: ``[C]``, or None for no bias.
        scale: ``[N, C]``, the style's per-channel scale.
        style_bias: ``[N, C]``, the style's per-channel bias.
        alpha: the leaky ReLU's negative slope.
        gain: the scale applied after the leaky ReLU.
        eps: added to the variance before the reciprocal square root (>= 0).
        impl: ``auto``, ``ref``, ``cpp``, ``cuda`` or ``triton`` (see ``stylegan_fast._backend``).
        generator: the random generator fresh noise is drawn from (None: the default one).

    Every tensor shares ``x``'s dtype and device.

    Returns:
        ``y: [N, C, H, W]`` in ``x``'s dtype; channels_last input gives channels_last output.
    """
    op = "layer_epilogue"
    v.check_tensor(op, "x", x, ndim=4)
    n, c, h, w = x.shape
    alpha = v.check_number(op, "alpha", alpha)
    gain = v.check_number(op, "gain", gain)
    eps = v.check_number(op, "eps", eps)
    if not eps >= 0:
        raise ValueError(f"{op}: eps must be >= 0, got {eps}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{op}: generator must be a torch.Generator, got {type(generator).__name__}"
        )
    for name, value in (("scale", scale), ("style_bias", style_bias)):
        v.check_tensor(op, name, value, ndim=2)
        v.check_shape(op, name, value, [n, c], "[N, C]")
        v.check_like(op, name, value, x)
    if bias is not None:
        v.check_tensor(op, "bias", bias, ndim=1)
        v.check_shape(op, "bias", bias, [c], "[C]")
        v.check_like(op, "bias", bias, x)
    if noise_strength is None:
        noise = None  # no noise term: noise is not read, and none is drawn
    else:
        v.check_tensor(op, "noise_strength", noise_strength, ndim=1)
        v.check_shape(op, "noise_strength", noise_strength, [c], "[C]")
        v.check_like(op, "noise_strength", noise_strength, x)
        if noise is None:
            noise = torch.randn([n, 1, h, w], generator=generator, dtype=x.dtype, device=x.device)
        else:
            v.check_noise(op, noise, x)

    backend = _backend.resolve(op, impl, x.device, x=x)
    if backend == "ref":
        act = reference.Activation(noise, noise_strength, bias, alpha, gain)
        return reference.layer_epilogue(x, act, scale, style_bias, eps)
    kernels = registration.OP.kernels(backend)
    y, _, _ = kernels.fwd(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps)
    return y
