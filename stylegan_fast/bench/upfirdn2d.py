"""upfirdn2d benchmarks: StyleGAN's blurred x2 up- and down-sampling with the [1, 3, 3, 1] FIR
filter, the two cases the anchor tables (``shared/anchors-h100.md``) and the kernel targets are
stated on. Both time the ``upfirdn2d`` op's backends."""

from __future__ import annotations

import torch

from ..ops import downsample2d, setup_filter, upsample2d
from .harness import OpBench, nbytes, randn
from .shapes import layer_shapes

_FILTERS: dict[torch.device, torch.Tensor] = {}


def _blur_filter(device: torch.device) -> torch.Tensor:
    if device not in _FILTERS:
        _FILTERS[device] = setup_filter([1, 3, 3, 1], device=device)
    return _FILTERS[device]


def _make_input(shape, dtype, device, generator):
    x = randn(shape, dtype=dtype, device=device, generator=generator)
    return [x.requires_grad_()]


def _make_upsample_input(shape, dtype, device, generator):
    # Labels give the output (C x H) as the anchor tables do: the input has half the size.
    n, c, h, w = shape
    return _make_input((n, c, h // 2, w // 2), dtype, device, generator)


def _upsample(inputs, impl):
    (x,) = inputs
    return upsample2d(x, _blur_filter(x.device), impl=impl)


def _downsample(inputs, impl):
    (x,) = inputs
    return downsample2d(x, _blur_filter(x.device), impl=impl)


def _floor_bytes(inputs, out):
    moved = nbytes(inputs[0]) + nbytes(out)  # read x, write y
    return moved, 2 * moved  # backward: read dy, write dx


UPSAMPLE = OpBench(
    "upsample2d", _make_upsample_input, _upsample, _floor_bytes, layer_shapes, "upfirdn2d"
)
DOWNSAMPLE = OpBench(
    "downsample2d", _make_input, _downsample, _floor_bytes, layer_shapes, "upfirdn2d"
)
