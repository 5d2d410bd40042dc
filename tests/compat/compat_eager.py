"""Plain-torch computations of the NVlabs and rosinality ops, written from their documented
semantics and independent of stylegan_fast (no reference, no kernel): the oracles of the
compatibility tests. Differentiable to any order, any floating dtype."""

from __future__ import annotations

import math

import torch
from torch import nn

# NVlabs' documented default (alpha, gain) per activation.
NVLABS_DEFAULTS = {
    "linear": (0.0, 1.0),
    "relu": (0.0, math.sqrt(2)),
    "lrelu": (0.2, math.sqrt(2)),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "elu": (0.0, 1.0),
    "selu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "swish": (0.0, math.sqrt(2)),
}

# SELU's constants (Klambauer et al. 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def activation(v: torch.Tensor, act: str, alpha: float) -> torch.Tensor:
    """The activation from its formula (``alpha``: lrelu's slope; elu's is fixed at 1)."""
    zero = torch.zeros_like(v)
    if act == "linear":
        return v
    if act == "relu":
        return torch.where(v > 0, v, zero)
    if act == "lrelu":
        return torch.where(v > 0, v, alpha * v)
    if act == "tanh":
        return 1 - 2 / (torch.exp(2 * v) + 1)
    if act == "sigmoid":
        return 1 / (1 + torch.exp(-v))
    if act == "elu":
        return torch.where(v > 0, v, torch.exp(v) - 1)
    if act == "selu":
        return SELU_SCALE * torch.where(v > 0, v, SELU_ALPHA * (torch.exp(v) - 1))
    if act == "softplus":
        return torch.log(1 + torch.exp(v))
    if act == "swish":
        return v / (1 + torch.exp(-v))
    raise ValueError(act)


def nvlabs_bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    """NVlabs' bias_act from its documentation: add ``b`` along ``dim``, activate, scale by
    ``gain``, clamp to ``[-clamp, clamp]``; None picks the documented defaults."""
    def_alpha, def_gain = NVLABS_DEFAULTS[act]
    alpha = def_alpha if alpha is None else alpha
    gain = def_gain if gain is None else gain
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    y = activation(x, act, alpha) * gain
    if clamp is not None:
        y = torch.minimum(torch.maximum(y, torch.full_like(y, -clamp)), torch.full_like(y, clamp))
    return y


def upfirdn2d(x, f, up=(1, 1), down=(1, 1), padding=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Upsample-pad-filter-downsample from the definition.

    Per axis, sample ``i`` of ``x`` lands at ``i * up + pad0`` on a zero canvas of
    ``n * up + pad0 + pad1`` samples (landing outside it: cropped); output ``m`` is
    ``sum_k canvas[m * down + k] * taps[k]`` over the filter window, where ``taps`` is ``f``
    reversed (true convolution) or, with ``flip_filter``, ``f`` itself; times ``gain``.

    Args:
        x: ``[N, C, H, W]``. f: ``[fh, fw]``, or ``[ft]`` meaning ``f ⊗ f``.
        up, down: ``(x, y)``. padding: ``(x0, x1, y0, y1)``.
    """
    upx, upy = up
    downx, downy = down
    padx0, padx1, pady0, pady1 = padding
    f = f.to(x.dtype)
    if f.ndim == 1:
        f = torch.outer(f, f)
    fh, fw = f.shape
    _, _, H, W = x.shape

    def placement(n, up_, pad0, pad1):
        """[canvas, n]: 1 where sample j of the input lands on the canvas."""
        size = n * up_ + pad0 + pad1
        dest = torch.arange(n) * up_ + pad0
        return (torch.arange(size)[:, None] == dest[None, :]).to(x.dtype)

    rows = placement(H, upy, pady0, pady1)
    cols = placement(W, upx, padx0, padx1)
    canvas = rows @ x @ cols.T
    out_h = (canvas.shape[2] - fh) // downy + 1
    out_w = (canvas.shape[3] - fw) // downx + 1
    taps = f if flip_filter else f.flip([0, 1])
    y = 0
    for a in range(fh):
        for c in range(fw):
            window = canvas[:, :, a : a + downy * (out_h - 1) + 1 : downy]
            window = window[:, :, :, c : c + downx * (out_w - 1) + 1 : downx]
            y = y + window * taps[a, c]
    return y * gain


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _padding4(padding):
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


def _size(f):
    return (1, 1) if f is None else (f.shape[-1], f.shape[0])


def _taps(f, x):
    return torch.ones(1, 1, dtype=x.dtype) if f is None else f


# NVlabs' helpers: upfirdn2d with the padding that centres the filter (their documented
# output sizes: up times, 1/down times, the same size as the input).
def nvlabs_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    return upfirdn2d(x, _taps(f, x), _pair(up), _pair(down), _padding4(padding), flip_filter, gain)


def nvlabs_upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1):
    upx, upy = _pair(up)
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = _size(f)
    padding = (
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    )
    return upfirdn2d(x, _taps(f, x), (upx, upy), (1, 1), padding, flip_filter, gain * upx * upy)


def nvlabs_downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1):
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = _size(f)
    padding = (
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    )
    return upfirdn2d(x, _taps(f, x), (1, 1), (downx, downy), padding, flip_filter, gain)


def nvlabs_filter2d(x, f, padding=0, flip_filter=False, gain=1):
    px0, px1, py0, py1 = _padding4(padding)
    fw, fh = _size(f)
    padding = (px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2)
    return upfirdn2d(x, _taps(f, x), (1, 1), (1, 1), padding, flip_filter, gain)


# rosinality's ops, from their definitions.
def rosinality_upfirdn2d(input, kernel, up=1, down=1, pad=(0, 0)):
    """2-D ``kernel`` as a true convolution; ``pad`` (before, after) on both axes or
    (x0, x1, y0, y1)."""
    padding = tuple(pad) * 2 if len(pad) == 2 else tuple(pad)
    return upfirdn2d(input, kernel, _pair(up), _pair(down), padding)


def rosinality_fused_leaky_relu(input, bias=None, negative_slope=0.2, scale=2**0.5):
    """``leaky_relu(input + bias, negative_slope) * scale``, bias along dim 1."""
    if bias is not None:
        input = input + bias.reshape([1, -1] + [1] * (input.ndim - 2))
    return activation(input, "lrelu", negative_slope) * scale


class RosinalityFusedLeakyReLU(nn.Module):
    """rosinality's FusedLeakyReLU: a learned ``bias`` (zeros), then
    :func:`rosinality_fused_leaky_relu`."""

    def __init__(self, channel, bias=True, negative_slope=0.2, scale=2**0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, x):
        return rosinality_fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)
