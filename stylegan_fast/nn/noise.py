"""NoiseInjection: per-pixel noise with a learned per-channel strength (StyleGAN's B)."""

from __future__ import annotations

import torch

from ..ops import noise_injection
from ._base import FusedModule, check_input, positive_int


class NoiseInjection(FusedModule):
    """``y[n, c] = x[n, c] + strength[c] * noise[n, 0]``; ``strength`` starts at zero, so a
    new layer adds no noise until it learns to.

    Args:
        channels: ``C``.
        impl: the ``noise_injection`` backend.

    ``forward(x, noise=None, generator=None)``: ``x: [N, C, H, W]``; ``noise: [N, 1, H, W]``
    or ``[1, 1, H, W]`` (cast to ``x``'s dtype), or None to draw standard-normal noise from
    ``generator``. Returns ``[N, C, H, W]``.
    """

    def __init__(self, channels: int, *, impl: str = "auto"):
        super().__init__(impl)
        self.channels = positive_int(type(self).__name__, "channels", channels)
        self.strength = torch.nn.Parameter(torch.zeros(channels))

    def forward(
        self,
        x: torch.Tensor,
        noise: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        check_input(type(self).__name__, x, 4, self.channels)
        if noise is not None:
            noise = noise.to(x.dtype)
        return noise_injection(
            x, noise, self.strength.to(x.dtype), impl=self.impl, generator=generator
        )

    def extra_repr(self) -> str:
        return f"{self.channels}, impl={self.impl}"
