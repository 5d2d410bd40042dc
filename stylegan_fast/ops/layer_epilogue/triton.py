"""Triton kernels of layer_epilogue: the shared per-plane normalisation kernels
(``ops/_plane_norm/``) with the noise + bias + leaky ReLU prologue fused in, behind
the ``layer_epilogue_fwd_triton`` / ``layer_epilogue_bwd_triton`` schemas. Imported on the first
call of either (it imports triton).

``u`` (the activation) is never stored: every pass recomputes it from x, so the traffic is that
of instance norm alone (``X`` = the bytes of x; the noise plane adds X/C a read):

- forward: ``2X`` (read x, write y: the minimum) for NCHW planes up to 128x128 and
  channels_last up to 32x32, one launch; ``3X`` above (x read twice), three launches.
- backward (dx, dnoise_strength, dbias, dscale, dstyle_bias: StyleGAN's training case): ``3X``
  (read dy and x from DRAM once, write dx once: the minimum) for the same planes, two launches
  (the plane kernel and the ordered batch sum of dbias/dnoise_strength); ``5X`` above (dy and x
  read twice), four launches. dnoise, when noise requires grad, adds a kernel that re-reads dy
  and x (``+2X``).
- planes above 64x64 (channels_last: 16x16 forward, 128 pixels backward) up to those limits are
  swept twice by the program that owns them: the kernels load ``3X`` forward and ``5X``
  backward, the second sweep assumed to hit L2, so DRAM sees the figures above (see
  ``ops/_plane_norm``).

torch.compile of the reference moves at least ``3X`` forward and ``5X`` backward at every size
(a reduction kernel, then a pointwise one that re-reads its input), so the one-pass plan is
where the fused kernels gain most.
"""

from __future__ import annotations

import torch

from .. import _plane_norm
from .._common import statistics_dtype

LABEL = "layer_epilogue (triton)"


def _check_like_x(t: torch.Tensor, x: torch.Tensor, name: str, shape) -> None:
    if t.device != x.device or t.dtype != x.dtype:
        raise RuntimeError(f"{LABEL}: {name} must match x in dtype and device")
    if list(t.shape) != list(shape):
        raise RuntimeError(f"{LABEL}: {name} must have shape {list(shape)}, got {list(t.shape)}")


def _prologue(x, noise, noise_strength, bias, scale, alpha, gain) -> _plane_norm.Prologue:
    """The checks forward and backward share (x, the prologue's tensors, scale), then the
    engine's prologue: ``lrelu(v, alpha) * gain = v * (gain if v > 0 else alpha * gain)``."""
    if x.dim() != 4:
        raise RuntimeError(f"{LABEL}: x must be [N, C, H, W], got {list(x.shape)}")
    _plane_norm.check_device(LABEL, x)
    n, c, h, w = x.shape
    if (noise is None) != (noise_strength is None):
        raise RuntimeError(f"{LABEL}: noise and noise_strength must be given together")
    if noise is not None:
        if noise.dim() != 4 or noise.shape[0] not in (n, 1):
            raise RuntimeError(f"{LABEL}: noise must be [N, 1, H, W] or [1, 1, H, W]")
        _check_like_x(noise, x, "noise", [noise.shape[0], 1, h, w])
        _check_like_x(noise_strength, x, "noise_strength", [c])
    if bias is not None:
        _check_like_x(bias, x, "bias", [c])
    _check_like_x(scale, x, "scale", [n, c])
    slopes = float(gain), float(alpha) * float(gain)
    return _plane_norm.Prologue(noise, noise_strength, bias, slopes)


def forward(
    x: torch.Tensor,
    noise: torch.Tensor | None,
    noise_strength: torch.Tensor | None,
    bias: torch.Tensor | None,
    scale: torch.Tensor,
    style_bias: torch.Tensor,
    alpha: float,
    gain: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``layer_epilogue_fwd_triton``: ``(y, mean, rstd)``, shapes as in the schema."""
    prologue = _prologue(x, noise, noise_strength, bias, scale, alpha, gain)
    _check_like_x(style_bias, x, "style_bias", scale.shape)
    return _plane_norm.forward(x, prologue, scale, style_bias, eps)


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    noise: torch.Tensor | None,
    noise_strength: torch.Tensor | None,
    bias: torch.Tensor | None,
    scale: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    alpha: float,
    gain: float,
    output_mask: list[bool],
) -> tuple[torch.Tensor, ...]:
    """``layer_epilogue_bwd_triton``: ``(dx, dnoise, dnoise_strength, dbias, dscale,
    dstyle_bias)``; an entry not in ``output_mask`` is empty."""
    prologue = _prologue(x, noise, noise_strength, bias, scale, alpha, gain)
    if dy.shape != x.shape or dy.dtype != x.dtype or dy.device != x.device:
        raise RuntimeError(f"{LABEL}: dy must match x in shape, dtype and device")
    stats_dtype = statistics_dtype(x.dtype)
    for name, stats in (("mean", mean), ("rstd", rstd)):
        if stats.device != x.device or stats.dtype != stats_dtype:
            raise RuntimeError(
                f"{LABEL}: {name} must be {_plane_norm.DTYPE_NAMES[stats_dtype]} on x's device"
            )
        if list(stats.shape) != list(x.shape[:2]):
            raise RuntimeError(f"{LABEL}: {name} must have shape [N, C]")
    mask = tuple(bool(m) for m in output_mask)
    if (mask[1] or mask[2]) and noise is None:
        raise RuntimeError(f"{LABEL}: dnoise and dnoise_strength need noise and noise_strength")
    if mask[3] and bias is None:
        raise RuntimeError(f"{LABEL}: dbias needs bias")
    return _plane_norm.backward(dy, x, prologue, scale, mean, rstd, mask)
