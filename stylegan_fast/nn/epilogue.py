"""LayerEpilogue: StyleGAN's per-layer epilogue (noise, bias, lrelu, instance norm, style) as
one fused op."""

from __future__ import annotations

import math

import torch

from ..ops import layer_epilogue
from ._base import FusedModule, check_input, positive_int
from .style import StyleMod


class LayerEpilogue(FusedModule):
    """What follows each convolution of StyleGAN's synthesis network, in one op:

    ``t = x + noise_strength[c] * noise``; ``u = lrelu(t + bias[c], alpha) * act_gain``;
    ``y = scale * instance_norm(u) + style_bias`` with ``(scale, style_bias) = StyleMod(w)``
    (``scale = 1 + A_s(w)``). ``noise_strength`` and ``bias`` start at zero.

    Args:
        channels: ``C``.
        w_dim: the width of ``w``.
        use_noise: learn a noise strength (False: no noise term at all).
        alpha: the lrelu slope.
        act_gain: the scale after the lrelu (instance norm cancels it up to ``eps``; StyleGAN1
            puts its sqrt(2) in the convolution's weights and uses 1 here).
        eps: added to the variance.
        impl: the ``layer_epilogue`` backend (and the style affine's).

    ``forward(x, w, noise=None, *, add_noise=True, generator=None)``:
    ``x: [N, C, H, W]``, ``w: [N, w_dim]``; ``noise: [N, 1, H, W]`` or ``[1, 1, H, W]``, or
    None to draw standard-normal noise from ``generator``; ``add_noise=False`` leaves noise
    out for this call. Returns ``[N, C, H, W]`` in ``x``'s dtype and layout.
    """

    def __init__(
        self,
        channels: int,
        w_dim: int,
        *,
        use_noise: bool = True,
        alpha: float = 0.2,
        act_gain: float = math.sqrt(2),
        eps: float = 1e-8,
        impl: str = "auto",
    ):
        super().__init__(impl)
        self.channels = positive_int(type(self).__name__, "channels", channels)
        self.use_noise = bool(use_noise)
        self.alpha, self.act_gain, self.eps = float(alpha), float(act_gain), float(eps)
        if self.use_noise:
            self.noise_strength = torch.nn.Parameter(torch.zeros(channels))
        else:
            self.register_parameter("noise_strength", None)
        self.bias = torch.nn.Parameter(torch.zeros(channels))
        self.style = StyleMod(w_dim, channels, impl=impl)

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise: torch.Tensor | None = None,
        *,
        add_noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        check_input(type(self).__name__, x, 4, self.channels)
        dtype = x.dtype
        scale, style_bias = self.style(w)
        strength = None
        if self.use_noise and add_noise:
            strength = self.noise_strength.to(dtype)
            noise = None if noise is None else noise.to(dtype)
        return layer_epilogue(
            x,
            noise,
            strength,
            self.bias.to(dtype),
            scale.to(dtype),
            style_bias.to(dtype),
            alpha=self.alpha,
            gain=self.act_gain,
            eps=self.eps,
            impl=self.impl,
            generator=generator,
        )

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, use_noise={self.use_noise}, alpha={self.alpha:g}, "
            f"act_gain={self.act_gain:g}, eps={self.eps:g}, impl={self.impl}"
        )
