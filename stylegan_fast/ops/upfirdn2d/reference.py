"""Eager reference of upfirdn2d: the specification every kernel is tested against.

For ``x: [N, C, H, W]`` and a filter ``f`` (``[fh, fw]``, or ``[ft]`` applied along both axes),
each axis (x: width, y: height) independently:

1. upsample: insert ``up - 1`` zeros after every sample (``H * upy``, ``W * upx``),
2. pad: ``pad0`` zeros before and ``pad1`` after (a negative pad crops instead),
3. filter: true convolution with ``f`` in 'valid' mode (cross-correlation with ``f`` when
   ``flip_filter``), the filter scaled by ``gain ** (f.ndim / 2)`` so that the whole operator
   carries ``gain`` once (a separable filter's two 1-D passes take ``gain ** 0.5`` each),
4. downsample: keep every ``down``-th sample, starting at 0.

Output ``[N, C, OH, OW]`` with ``OH = (H * upy + pady0 + pady1 - fh) // downy + 1`` (likewise
``OW``). The filter is a constant here (cast to ``x``'s dtype, so fp16/bf16 inputs are filtered
in their own precision by torch's convolution); the operator is linear in ``x``.

Plain torch throughout, so it is differentiable to any order (in ``x`` and in ``f``). Imports
only torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def separable_gains(gain: float) -> tuple[float, float]:
    """The gains of a separable filter's horizontal and vertical passes: ``gain ** 0.5`` each,
    with the sign of a negative gain carried by the horizontal pass (so the product is
    ``gain``; ``gain ** 0.5`` itself would be complex)."""
    root = math.sqrt(abs(gain))
    return (root if gain >= 0 else -root), root


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Reference upsample-pad-filter-downsample (arguments already validated and resolved).

    Args:
        x: ``[N, C, H, W]``.
        f: ``[fh, fw]`` or, separable, ``[ft]`` (``fh = fw = ft``); float32.
        up, down: ``(upx, upy)``, ``(downx, downy)``, each >= 1.
        padding: ``(padx0, padx1, pady0, pady1)``; negative values crop.
        flip_filter: cross-correlate instead of convolving.
        gain: overall scale of the output.

    Returns:
        ``y: [N, C, OH, OW]``, channels_last when ``x`` is (as the kernels return it).
    """
    upx, upy = up
    downx, downy = down
    padx0, padx1, pady0, pady1 = padding
    N, C, H, W = x.shape
    fh, fw = (f.shape[0], f.shape[-1])
    out_h = (H * upy + pady0 + pady1 - fh) // downy + 1
    out_w = (W * upx + padx0 + padx1 - fw) // downx + 1
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    if C == 0:  # a depthwise convolution needs at least one group; a reshape keeps the graph
        return x.reshape(N, C, out_h, out_w)

    # 1. Zero insertion: each sample becomes a [upy, upx] block with the sample at its top left.
    if upx > 1 or upy > 1:
        x = x.reshape(N, C, H, 1, W, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(N, C, H * upy, W * upx)

    # 2. Pad first, then crop: a crop may reach into padding added on the same side.
    x = F.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[
        :,
        :,
        max(-pady0, 0) : x.shape[2] - max(-pady1, 0),
        max(-padx0, 0) : x.shape[3] - max(-padx1, 0),
    ]

    # 3. conv2d cross-correlates, so a true convolution flips the filter.
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = (f * gain).reshape(1, 1, fh, fw).expand(C, 1, fh, fw)
        x = F.conv2d(x, weight, groups=C)
    else:
        gain_x, gain_y = separable_gains(gain)
        x = F.conv2d(x, (f * gain_x).reshape(1, 1, 1, fw).expand(C, 1, 1, fw), groups=C)
        x = F.conv2d(x, (f * gain_y).reshape(1, 1, fh, 1).expand(C, 1, fh, 1), groups=C)

    # 4. Keep samples 0, down, 2 * down, ...
    x = x[:, :, ::downy, ::downx]
    return x.contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )
