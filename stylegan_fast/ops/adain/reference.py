"""Eager reference of adain (adaptive instance normalization): the specification every kernel
is tested against.

For ``x: [N, C, H, W]``, ``scale: [N, C]`` and ``bias: [N, C]``, per plane ``(n, c)``:

1. ``mean = mean_hw(x)``,
2. ``var = mean_hw((x - mean)^2)`` (population variance, two-pass: no cancellation for planes
   whose mean is large against their spread),
3. ``x_hat = (x - mean) * rsqrt(var + eps)``,
4. ``y = scale[n, c] * x_hat + bias[n, c]``.

A plane of one pixel has ``var = 0`` and ``x_hat = 0``, so ``y = bias``. Statistics are computed
in float32 for float16/bfloat16 inputs (float64 for float64): ``x``, ``scale`` and ``bias`` are
upcast, ``y`` is computed in that precision and cast back to ``x.dtype`` once.

Plain torch throughout, so it is differentiable to any order. Imports only torch (and
``ops/_common.py``'s ``statistics_dtype``, itself plain torch).
"""

from __future__ import annotations

import torch

# The precision the statistics are computed (and, by the kernels, returned) in.
from .._common import statistics_dtype


def centered_and_variance(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1-2 in the statistics dtype: ``x - mean`` shaped like ``x`` and ``var``
    ``[N, C, 1, 1]``. Empty planes give NaN statistics (the mean of nothing)."""
    stats = x.to(statistics_dtype(x.dtype))
    centered = stats - stats.mean(dim=(2, 3), keepdim=True)
    return centered, centered.square().mean(dim=(2, 3), keepdim=True)


def adain(
    x: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    eps: float | torch.Tensor,
) -> torch.Tensor:
    """Reference adaptive instance normalization (arguments already validated).

    Args:
        x: ``[N, C, H, W]``.
        scale, bias: ``[N, C]``, the style applied to each normalised plane.
        eps: added to the variance; a float, or a ``[N, C, 1, 1]`` tensor of per-plane values
            (the kernels' higher-order backward passes the eps their saved ``rstd`` implies).

    Returns:
        ``y: [N, C, H, W]`` in ``x.dtype`` and ``x``'s memory format.
    """
    centered, var = centered_and_variance(x)
    x_hat = centered * torch.rsqrt(var + eps)
    stats_dtype = x_hat.dtype
    # x_hat first: the result takes its strides, so channels_last stays channels_last.
    y = x_hat * scale.to(stats_dtype)[:, :, None, None] + bias.to(stats_dtype)[:, :, None, None]
    return y.to(x.dtype)
