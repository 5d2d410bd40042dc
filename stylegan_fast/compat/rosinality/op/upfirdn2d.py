"""rosinality's ``op.upfirdn2d``: :func:`upfirdn2d`.

rosinality's op upsamples by zero insertion, pads (negative crops), applies the 2-D ``kernel``
as a true convolution and keeps every ``down``-th sample, which is our upfirdn2d with:

- ``f = kernel`` (2-D only; rosinality has no separable form) and ``flip_filter=False``
  (true convolution; our flip_filter=True would cross-correlate), ``gain=1``;
- ``pad=(p0, p1)`` -> ``padding=(p0, p1, p0, p1)``: the same (before, after) on both axes.
  A 4-tuple is ``(x0, x1, y0, y1)`` in both. (Our 2-element padding means ``[px, py]``,
  symmetric per axis, so it cannot be passed through as is.)
- ``up``/``down``: an int or ``(x, y)``, as in ours.

The kernel is applied in float32, the precision our kernels take filters in: a float64
kernel (a model moved to float64 with ``.double()``) is rounded to float32, which is exact for
the usual binomial kernels such as ``[1, 3, 3, 1]``.
"""

from __future__ import annotations

import torch

from ....ops import _validation as v
from ....ops.upfirdn2d import upfirdn2d as _upfirdn2d

__all__ = ["upfirdn2d"]


def _padding(op: str, pad) -> tuple[int, int, int, int]:
    """``(before, after)`` or ``(x0, x1, y0, y1)`` as ``(x0, x1, y0, y1)``."""
    if not isinstance(pad, (list, tuple)) or len(pad) not in (2, 4):
        raise ValueError(
            f"{op}: pad must be (before, after), applied to both axes, or (x0, x1, y0, y1); "
            f"got {pad!r}"
        )
    pad = tuple(v.check_int(op, "pad", p) for p in pad)
    return pad * 2 if len(pad) == 2 else pad


def upfirdn2d(
    input: torch.Tensor,
    kernel: torch.Tensor,
    up=1,
    down=1,
    pad=(0, 0),
) -> torch.Tensor:
    """Upsample ``input`` by ``up`` (zero insertion), pad by ``pad``, convolve with ``kernel``,
    downsample by ``down``.

    Args:
        input: ``[N, C, H, W]``; fp16/bf16/fp32/fp64.
        kernel: ``[kh, kw]``, a floating tensor on ``input``'s device (rosinality's
            ``make_kernel`` gives one).
        up, down: an int or ``(x, y)``, >= 1.
        pad: ``(before, after)`` for both axes, or ``(x0, x1, y0, y1)``; negative crops.

    Returns:
        ``[N, C, (H * up_y + pad_y0 + pad_y1 - kh) // down_y + 1, (likewise for W)]``.
    """
    op = "upfirdn2d"
    v.check_tensor(op, "input", input)
    if input.ndim != 4:
        raise ValueError(f"{op}: input must have shape [N, C, H, W], got {list(input.shape)}")
    v.check_tensor(op, "kernel", kernel)
    if kernel.ndim != 2:
        raise ValueError(
            f"{op}: kernel must have shape [kh, kw] (a 1-D kernel k becomes k ⊗ k, as "
            f"make_kernel does), got {list(kernel.shape)}"
        )
    if kernel.numel() == 0:
        raise ValueError(f"{op}: kernel must have at least one tap, got {list(kernel.shape)}")
    if kernel.device != input.device:
        raise ValueError(
            f"{op}: kernel is on {kernel.device} but input is on {input.device}; "
            "move them to one device"
        )
    padding = _padding(op, pad)
    f = kernel.to(torch.float32)
    return _upfirdn2d(input, f, up, down, padding, flip_filter=False, gain=1)
