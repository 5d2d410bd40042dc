"""Equalized-learning-rate layers (Karras et al. 2018, "use_wscale").

Weights are stored as ``N(0, 1) / lr_mul`` and multiplied at run time by
``gain / sqrt(fan_in) * lr_mul``; biases are stored divided by ``lr_mul`` and multiplied by
it. Every weight then gets the same effective learning rate under Adam, whatever its fan-in,
and ``lr_mul`` slows a whole layer down (StyleGAN's mapping network uses 0.01).

Two places can carry the ``sqrt(2)`` an lrelu layer needs: the weight scale (``gain``, as
StyleGAN1's TensorFlow code does) or the activation (``act_gain``, as NVlabs' PyTorch code and
``bias_act``'s default do). The two give the same function at initialisation and differ only
in how the bias is scaled; the models here follow StyleGAN1 (``gain=sqrt(2)``,
``act_gain=1``), and the defaults here follow ``bias_act`` for drop-in use.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..ops import bias_act, downsample2d, upsample2d
from ..ops.bias_act import ACTIVATIONS
from ._base import FusedModule, check_input, positive_float, positive_int
from .resample import make_filter


def _check_activation(owner: str, activation) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"{owner}: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
        )
    return activation


class _EqualizedLayer(FusedModule):
    """What EqualLinear and EqualConv2d share: the weight (stored ``N(0, 1) / lr_mul``,
    applied times ``weight_gain = gain / sqrt(fan_in) * lr_mul``), the optional bias (stored
    ``bias_init / lr_mul``, applied times ``lr_mul``) and the activation after them."""

    def _init_parameters(
        self, weight_shape, bias, lr_mul, gain, bias_init, activation, act_gain
    ) -> None:
        """``weight_shape``: ``[out, in, ...]``; the fan-in is the product of all but ``out``."""
        name = type(self).__name__
        self.lr_mul = positive_float(name, "lr_mul", lr_mul)
        self.gain = float(gain)
        self.activation = _check_activation(name, activation)
        self.act_gain = None if act_gain is None else float(act_gain)
        self.weight = torch.nn.Parameter(torch.randn(weight_shape) / self.lr_mul)
        if bias:
            self.bias = torch.nn.Parameter(torch.full([weight_shape[0]], bias_init / self.lr_mul))
        else:
            self.register_parameter("bias", None)
        fan_in = math.prod(weight_shape[1:])
        self.weight_gain = self.gain / math.sqrt(fan_in) * self.lr_mul

    def effective_weight(self) -> torch.Tensor:
        """``[out, in]`` or ``[out, in, k, k]``: the weight as the layer applies it."""
        return self.weight * self.weight_gain

    def effective_bias(self) -> torch.Tensor | None:
        """``[out]`` or None: the bias as the layer applies it."""
        return None if self.bias is None else self.bias * self.lr_mul

    def _activate(self, y: torch.Tensor, bias: torch.Tensor | None, dim: int) -> torch.Tensor:
        """``act(y + bias) * act_gain`` along ``dim``, the bias cast to ``y``'s dtype."""
        bias = None if bias is None else bias.to(y.dtype)
        return bias_act(y, bias, dim=dim, act=self.activation, gain=self.act_gain, impl=self.impl)


class EqualLinear(_EqualizedLayer):
    """Fully connected layer with equalized learning rate, bias and a fused activation.

    ``y = act(x @ (weight * weight_gain).T + bias * lr_mul) * act_gain`` with
    ``weight_gain = gain / sqrt(in_features) * lr_mul``.

    Args:
        in_features, out_features: widths.
        bias: learn a bias (stored ``bias_init / lr_mul``).
        lr_mul: learning-rate multiplier of the weight and the bias.
        gain: the weight scale's gain (``sqrt(2)`` puts He initialisation in the weights).
        bias_init: the bias's initial effective value.
        activation: a ``bias_act`` activation (``linear``, ``lrelu``, ...).
        act_gain: scale after the activation; None for ``bias_act``'s default
            (``sqrt(2)`` for relu/lrelu, else 1).
        impl: the ``bias_act`` backend (``auto``, ``ref``, ``cpp``, ``cuda``, ``triton``).

    Shapes: ``x: [..., in_features] -> y: [..., out_features]`` in ``x``'s dtype (the weight
    and bias are cast to it, so fp16/bf16 inputs and autocast work).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        lr_mul: float = 1.0,
        gain: float = 1.0,
        bias_init: float = 0.0,
        activation: str = "linear",
        act_gain: float | None = None,
        impl: str = "auto",
    ):
        super().__init__(impl)
        name = type(self).__name__
        self.in_features = positive_int(name, "in_features", in_features)
        self.out_features = positive_int(name, "out_features", out_features)
        self._init_parameters(
            [out_features, in_features], bias, lr_mul, gain, bias_init, activation, act_gain
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.ndim < 1:
            raise TypeError(f"{name}: input must be a tensor [..., {self.in_features}]")
        check_input(name, x, x.ndim, self.in_features, dim=-1)
        weight = self.effective_weight().to(x.dtype)
        bias = self.effective_bias()
        if self.activation == "linear" and self.act_gain is None:
            # Bias folded into the matmul: one kernel instead of two.
            return F.linear(x, weight, None if bias is None else bias.to(x.dtype))
        y = F.linear(x, weight)
        return self._activate(y, bias, y.ndim - 1)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, lr_mul={self.lr_mul:g}, gain={self.gain:g}, "
            f"activation={self.activation}, act_gain={self.act_gain}, impl={self.impl}"
        )


def fused_upsample_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The ``conv_transpose2d`` weight ``[in, out, k+1, k+1]`` (stride 2, padding ``k // 2``)
    that equals nearest-neighbour x2 upsampling followed by a ``k x k`` convolution with
    ``weight: [out, in, k, k]`` (odd ``k``, padding ``k // 2``).

    Per axis, output ``2i + m`` of the two-step form takes input ``i`` with the sum of two
    adjacent taps; padding the taps by one and adding the two shifts gives those sums, and
    the transposed convolution indexes them in reverse, hence the flip.
    """
    padded = F.pad(weight, [1, 1, 1, 1])
    summed = padded[:, :, 1:, 1:] + padded[:, :, :-1, 1:] + padded[:, :, 1:, :-1]
    summed = summed + padded[:, :, :-1, :-1]
    return summed.flip([2, 3]).transpose(0, 1)


def fused_downsample_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The stride-2 ``conv2d`` weight ``[out, in, k+1, k+1]`` (padding ``k // 2``) that equals
    a ``k x k`` convolution (padding ``k // 2``) followed by 2x2 average pooling."""
    padded = F.pad(weight, [1, 1, 1, 1])
    summed = padded[:, :, 1:, 1:] + padded[:, :, :-1, 1:] + padded[:, :, 1:, :-1]
    return (summed + padded[:, :, :-1, :-1]) * 0.25


class EqualConv2d(_EqualizedLayer):
    """2-D convolution with equalized learning rate, optional x2 resampling, bias and a fused
    activation.

    ``up=2``: nearest-neighbour x2 upsampling, then the convolution. ``down=2``: the
    convolution, then 2x2 average pooling. ``fused_resample=True`` computes either as one
    strided (transposed) convolution with a ``(k+1) x (k+1)`` kernel built from the weight —
    the same function, fewer multiply-adds at large resolutions (StyleGAN's "fused_scale").
    The unfused form resamples with ``upfirdn2d`` (a ``[1, 1]`` filter) through ``impl``.
    Then ``y = act(conv + bias * lr_mul) * act_gain``.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd square kernel size (padding ``kernel_size // 2`` keeps the size).
        bias, lr_mul, gain, activation, act_gain, impl: as for :class:`EqualLinear`
            (``fan_in = in_channels * kernel_size ** 2``).
        up, down: 1 or 2 (not both 2).
        fused_resample: use the strided form for ``up``/``down``.

    Shapes: ``x: [N, in_channels, H, W] -> y: [N, out_channels, H * up / down, W * up / down]``
    in ``x``'s dtype; channels_last stays channels_last.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        *,
        lr_mul: float = 1.0,
        gain: float = 1.0,
        bias_init: float = 0.0,
        activation: str = "linear",
        act_gain: float | None = None,
        up: int = 1,
        down: int = 1,
        fused_resample: bool = False,
        impl: str = "auto",
    ):
        super().__init__(impl)
        name = type(self).__name__
        self.in_channels = positive_int(name, "in_channels", in_channels)
        self.out_channels = positive_int(name, "out_channels", out_channels)
        self.kernel_size = positive_int(name, "kernel_size", kernel_size)
        if kernel_size % 2 != 1:
            raise ValueError(f"{name}: kernel_size must be odd, got {kernel_size}")
        if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
            raise ValueError(f"{name}: up and down must be 1 or 2, not both 2; got {up}, {down}")
        self.up, self.down = up, down
        self.fused_resample = bool(fused_resample)
        self.padding = kernel_size // 2
        shape = [out_channels, in_channels, kernel_size, kernel_size]
        self._init_parameters(shape, bias, lr_mul, gain, bias_init, activation, act_gain)
        # Nearest-neighbour / box filter for the unfused resampling; float32 as upfirdn2d needs.
        self.register_buffer("resample_filter", make_filter([1, 1]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, 4, self.in_channels)
        weight = self.effective_weight().to(x.dtype)
        f = self.resample_filter.float()  # .half() on the module must not change the filter
        if self.up == 2 and self.fused_resample:
            x = F.conv_transpose2d(x, fused_upsample_kernel(weight), stride=2, padding=self.padding)
        elif self.down == 2 and self.fused_resample:
            x = F.conv2d(x, fused_downsample_kernel(weight), stride=2, padding=self.padding)
        else:
            if self.up == 2:
                x = upsample2d(x, f, up=2, impl=self.impl)
            x = F.conv2d(x, weight, padding=self.padding)
            if self.down == 2:
                x = downsample2d(x, f, down=2, impl=self.impl)
        bias = self.effective_bias()
        if bias is None and self.activation == "linear" and self.act_gain is None:
            return x
        return self._activate(x, bias, 1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"bias={self.bias is not None}, up={self.up}, down={self.down}, "
            f"fused_resample={self.fused_resample}, lr_mul={self.lr_mul:g}, gain={self.gain:g}, "
            f"activation={self.activation}, act_gain={self.act_gain}, impl={self.impl}"
        )
