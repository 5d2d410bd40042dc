"""Resampling layers on upfirdn2d: Upsample2d, Downsample2d, Blur."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..ops import downsample2d, filter2d, setup_filter, upsample2d
from ._base import FusedModule, check_input, positive_int


def make_filter(taps: Sequence[float], normalize: bool = True) -> torch.Tensor:
    """``setup_filter(taps)`` on torch's default device, also inside a
    ``with torch.device("meta")`` block (setup_filter computes on the CPU)."""
    with torch.device("cpu"):
        f = setup_filter(list(taps), normalize=normalize)
    return f.to(torch.get_default_device())


def _filter_buffer(owner: str, taps, normalize: bool = True) -> torch.Tensor:
    if taps is None or isinstance(taps, (str, bytes)) or len(taps) == 0:
        raise ValueError(f"{owner}: the filter must be a non-empty sequence of taps, got {taps!r}")
    if sum(taps) == 0:
        raise ValueError(f"{owner}: the filter taps must not sum to zero, got {list(taps)}")
    return make_filter(taps, normalize)


class _Resample2d(FusedModule):
    """Upsample2d and Downsample2d: a resampling ``factor`` and the normalised filter taps
    ``resample_filter`` (a non-persistent float32 buffer of the same name)."""

    def __init__(
        self, factor: int = 2, resample_filter: Sequence[float] = (1, 1), *, impl: str = "auto"
    ):
        super().__init__(impl)
        self.factor = positive_int(type(self).__name__, "factor", factor)
        self.taps = tuple(resample_filter)
        self.register_buffer(
            "resample_filter", _filter_buffer(type(self).__name__, self.taps), persistent=False
        )

    def extra_repr(self) -> str:
        return f"factor={self.factor}, resample_filter={list(self.taps)}, impl={self.impl}"


class Upsample2d(_Resample2d):
    """Upsamples by ``factor`` with the interpolation filter ``resample_filter`` (normalised;
    applied along both axes). The default ``[1, 1]`` at factor 2 is nearest-neighbour, as
    StyleGAN1 uses; ``[1, 3, 3, 1]`` is StyleGAN2's.

    ``x: [N, C, H, W] -> [N, C, H * factor, W * factor]`` in ``x``'s dtype and layout.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, 4)
        return upsample2d(x, self.resample_filter.float(), up=self.factor, impl=self.impl)


class Downsample2d(_Resample2d):
    """Filters with the anti-aliasing filter ``resample_filter`` (normalised; both axes), then
    keeps every ``factor``-th sample. The default ``[1, 1]`` at factor 2 is 2x2 average
    pooling (StyleGAN1's ``downscale2d``).

    ``x: [N, C, H, W] -> [N, C, H / factor, W / factor]`` (even sizes) in ``x``'s dtype.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, 4)
        return downsample2d(x, self.resample_filter.float(), down=self.factor, impl=self.impl)


class Blur(FusedModule):
    """Low-pass filters each channel with ``blur_filter`` (outer product of the 1-D taps,
    normalised to sum 1 unless ``normalize=False``), keeping the size: StyleGAN's ``[1, 2, 1]``
    blur after upsampling and before downsampling.

    ``x: [N, C, H, W] -> [N, C, H, W]`` in ``x``'s dtype and layout.
    """

    def __init__(
        self,
        blur_filter: Sequence[float] = (1, 2, 1),
        *,
        normalize: bool = True,
        impl: str = "auto",
    ):
        super().__init__(impl)
        self.taps = tuple(blur_filter)
        self.normalize = bool(normalize)
        self.register_buffer(
            "blur_filter",
            _filter_buffer(type(self).__name__, self.taps, self.normalize),
            persistent=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, 4)
        return filter2d(x, self.blur_filter.float(), impl=self.impl)

    def extra_repr(self) -> str:
        return f"blur_filter={list(self.taps)}, normalize={self.normalize}, impl={self.impl}"
