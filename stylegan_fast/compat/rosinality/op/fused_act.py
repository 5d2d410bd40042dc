"""rosinality's ``op.fused_act``: :func:`fused_leaky_relu` and :class:`FusedLeakyReLU`.

``fused_leaky_relu(input, bias, negative_slope, scale)`` is ``leaky_relu(input + bias) * scale``
with ``bias`` running along dim 1, which is our
``bias_act(input, bias, dim=1, act="lrelu", alpha=negative_slope, gain=scale)``.
``negative_slope`` is honoured on every device (rosinality's CPU path uses 0.2 whatever is
passed; only the default matches that).
"""

from __future__ import annotations

import torch
from torch import nn

from ....ops import _validation as v
from ....ops.bias_act import bias_act as _bias_act

__all__ = ["FusedLeakyReLU", "fused_leaky_relu"]


def fused_leaky_relu(
    input: torch.Tensor,
    bias: torch.Tensor | None = None,
    negative_slope: float = 0.2,
    scale: float = 2**0.5,
) -> torch.Tensor:
    """``leaky_relu(input + bias, negative_slope) * scale``, in one pass.

    Args:
        input: ``[N, C, ...]`` (at least 2-D when ``bias`` is given); fp16/bf16/fp32/fp64.
        bias: ``[C]``, same dtype and device as ``input``, or None.
        negative_slope: the slope below zero.
        scale: output scale (the default ``sqrt(2)`` keeps the activations' magnitude).

    Returns:
        Shaped like ``input``; differentiable to any order.
    """
    op = "fused_leaky_relu"
    v.check_tensor(op, "input", input)
    if bias is not None:
        v.check_tensor(op, "bias", bias, ndim=1)
        if input.ndim < 2:
            raise ValueError(
                f"{op}: input must have shape [N, C, ...] (bias runs along dim 1), got "
                f"{list(input.shape)}"
            )
        v.check_shape(op, "bias", bias, [input.shape[1]], "[input.shape[1]]")
        v.check_like(op, "bias", bias, input, "input")
    negative_slope = v.check_number(op, "negative_slope", negative_slope)
    scale = v.check_number(op, "scale", scale)
    return _bias_act(input, bias, 1, "lrelu", negative_slope, scale, None)


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias, then :func:`fused_leaky_relu`.

    The parameter is named ``bias`` (``[channel]``, zeros at initialisation; None without
    bias), so state dicts of rosinality's models load unchanged.
    """

    def __init__(
        self,
        channel: int,
        bias: bool = True,
        negative_slope: float = 0.2,
        scale: float = 2**0.5,
    ):
        super().__init__()
        op = "FusedLeakyReLU"
        channel = v.check_int(op, "channel", channel)
        if channel < 0:
            raise ValueError(f"{op}: channel must be >= 0, got {channel}")
        self.channel = channel
        if bias:
            self.bias = nn.Parameter(torch.zeros(channel))
        else:
            self.register_parameter("bias", None)
        self.negative_slope = v.check_number(op, "negative_slope", negative_slope)
        self.scale = v.check_number(op, "scale", scale)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``input: [N, channel, ...]`` -> the same shape."""
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)

    def extra_repr(self) -> str:
        return (
            f"{self.channel}, bias={self.bias is not None}, "
            f"negative_slope={self.negative_slope}, scale={self.scale:.6g}"
        )
