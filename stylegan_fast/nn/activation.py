"""BiasAct: a learned per-channel bias and an activation in one fused op."""

from __future__ import annotations

import torch

from ..ops import bias_act
from ..ops.bias_act import ACTIVATIONS
from ._base import FusedModule, positive_float, positive_int


class BiasAct(FusedModule):
    """``y = clamp(act(x + bias * lr_mul, alpha) * gain, -clamp, clamp)`` along ``dim``.

    Args:
        channels: the size of ``x`` along ``dim``.
        act: a ``bias_act`` activation (``linear``, ``relu``, ``lrelu``, ...).
        alpha, gain, clamp: as for :func:`stylegan_fast.ops.bias_act` (None: its defaults;
            lrelu is slope 0.2, gain sqrt(2)).
        bias: learn a bias (zero-initialised; stored ``/ lr_mul``); False: activation only.
        lr_mul: learning-rate multiplier of the bias.
        dim: the axis of ``x`` the bias runs along.
        impl: the ``bias_act`` backend.

    Shapes: ``x: [..., channels, ...] -> y`` shaped like ``x``, in ``x``'s dtype.
    """

    def __init__(
        self,
        channels: int,
        act: str = "lrelu",
        *,
        alpha: float | None = None,
        gain: float | None = None,
        clamp: float | None = None,
        bias: bool = True,
        lr_mul: float = 1.0,
        dim: int = 1,
        impl: str = "auto",
    ):
        super().__init__(impl)
        name = type(self).__name__
        self.channels = positive_int(name, "channels", channels)
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError(f"{name}: act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        self.act, self.alpha, self.gain, self.clamp, self.dim = act, alpha, gain, clamp, dim
        self.lr_mul = positive_float(name, "lr_mul", lr_mul)
        if bias:
            self.bias = torch.nn.Parameter(torch.zeros(channels))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else (self.bias * self.lr_mul).to(x.dtype)
        return bias_act(
            x,
            bias,
            dim=self.dim,
            act=self.act,
            alpha=self.alpha,
            gain=self.gain,
            clamp=self.clamp,
            impl=self.impl,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, act={self.act}, alpha={self.alpha}, gain={self.gain}, "
            f"clamp={self.clamp}, bias={self.bias is not None}, dim={self.dim}, impl={self.impl}"
        )
