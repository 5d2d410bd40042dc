"""Triton kernels of adain: the shared per-plane normalisation kernels
(``ops/_plane_norm/``) with the identity prologue, behind the ``adain_fwd_triton`` /
``adain_bwd_triton`` schemas. Imported on the first call of either (it imports triton).

Memory traffic (``X`` = the bytes of x), one launch each way for NCHW planes up to 128x128 and
channels_last up to 32x32: forward ``2X`` (read x, write y: the minimum), backward ``3X`` (read
dy and x, write dx: the minimum). Planes up to 64x64 (channels_last 16x16 forward, 128 pixels
backward) are read once; larger ones are swept twice by the program that owns them, loading
``3X`` forward and ``5X`` backward, the second sweep from L2 (assumed, see the plans). Above
128x128 (32x32): ``3X`` forward and ``5X`` backward from DRAM (x, and dy, read twice), three
launches each. See ``ops/_plane_norm`` for the plans.
"""

from __future__ import annotations

import torch

from .. import _plane_norm
from .._common import statistics_dtype

LABEL = "adain (triton)"


def _check_plane_tensor(t: torch.Tensor, x: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    n, c = x.shape[:2]
    if t.dim() != 2 or tuple(t.shape) != (n, c):
        raise RuntimeError(
            f"{LABEL}: {name} must have shape [N, C] = [{n}, {c}], got {list(t.shape)}"
        )
    if t.dtype != dtype or t.device != x.device:
        raise RuntimeError(
            f"{LABEL}: {name} must be a {_plane_norm.DTYPE_NAMES.get(dtype, dtype)} tensor on "
            f"{x.device}"
        )


def _check_x(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise RuntimeError(f"{LABEL}: x must have shape [N, C, H, W], got {list(x.shape)}")
    _plane_norm.check_device(LABEL, x)


def forward(
    x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``adain_fwd_triton``: ``(y, mean, rstd)`` for ``x: [N, C, H, W]``, ``scale, bias: [N, C]``;
    ``mean, rstd: [N, C]`` in float32 (float64 for float64 x)."""
    _check_x(x)
    _check_plane_tensor(scale, x, "scale", x.dtype)
    _check_plane_tensor(bias, x, "bias", x.dtype)
    return _plane_norm.forward(x, _plane_norm.IDENTITY, scale, bias, eps)


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    scale: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    output_mask: list[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``adain_bwd_triton``: ``(dx, dscale, dbias)``; an entry not in ``output_mask`` is empty."""
    _check_x(x)
    if dy.shape != x.shape or dy.dtype != x.dtype or dy.device != x.device:
        raise RuntimeError(f"{LABEL}: dy must match x in shape, dtype and device")
    _check_plane_tensor(scale, x, "scale", x.dtype)
    stats_dtype = statistics_dtype(x.dtype)
    _check_plane_tensor(mean, x, "mean", stats_dtype)
    _check_plane_tensor(rstd, x, "rstd", stats_dtype)
    compute_dx, compute_dscale, compute_dbias = (bool(m) for m in output_mask)
    mask = (compute_dx, False, False, False, compute_dscale, compute_dbias)
    dx, _, _, _, dscale, dbias = _plane_norm.backward(
        dy, x, _plane_norm.IDENTITY, scale, mean, rstd, mask
    )
    return dx, dscale, dbias
