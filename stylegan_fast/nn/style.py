"""Style modulation: the learned affine map A from w to per-channel styles, and AdaIN."""

from __future__ import annotations

import torch

from ..ops import adain
from ._base import FusedModule, check_input, positive_int
from .equalized import EqualLinear


class StyleMod(FusedModule):
    """The affine transform A of StyleGAN: ``w -> (scale, bias)`` per channel.

    ``s = A(w)`` is an equalized-lr dense layer (gain 1, zero bias) to ``2 * channels``;
    ``scale = 1 + s[:, :channels]`` (so an untrained layer passes its input through) and
    ``bias = s[:, channels:]``.

    Args:
        w_dim: the width of ``w``.
        channels: ``C``, the channels styled.
        lr_mul: learning-rate multiplier of the affine.
        impl: the backend of the affine's ops.

    ``forward(w: [N, w_dim]) -> (scale: [N, C], bias: [N, C])`` in ``w``'s dtype.
    """

    def __init__(self, w_dim: int, channels: int, *, lr_mul: float = 1.0, impl: str = "auto"):
        super().__init__(impl)
        name = type(self).__name__
        self.w_dim = positive_int(name, "w_dim", w_dim)
        self.channels = positive_int(name, "channels", channels)
        self.affine = EqualLinear(w_dim, 2 * channels, lr_mul=lr_mul, gain=1.0, impl=impl)

    def forward(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_input(type(self).__name__, w, 2, self.w_dim)
        styles = self.affine(w)
        scale = styles[:, : self.channels] + 1
        bias = styles[:, self.channels :].contiguous()
        return scale, bias

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, channels={self.channels}"


class AdaIN(FusedModule):
    """Adaptive instance normalization driven by ``w``: each ``[H, W]`` plane of ``x`` is
    normalised to zero mean and unit variance, then ``y = scale * x_hat + bias`` with
    ``(scale, bias) = StyleMod(w)``.

    Args:
        w_dim, channels: as for :class:`StyleMod`.
        eps: added to the variance.
        impl: the ``adain`` backend (and the affine's).

    ``forward(x: [N, C, H, W], w: [N, w_dim]) -> [N, C, H, W]`` in ``x``'s dtype.
    """

    def __init__(self, w_dim: int, channels: int, *, eps: float = 1e-8, impl: str = "auto"):
        super().__init__(impl)
        self.channels = positive_int(type(self).__name__, "channels", channels)
        self.eps = float(eps)
        self.style = StyleMod(w_dim, channels, impl=impl)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, 4, self.channels)
        scale, bias = self.style(w)
        return adain(x, scale.to(x.dtype), bias.to(x.dtype), self.eps, impl=self.impl)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, eps={self.eps:g}, impl={self.impl}"
