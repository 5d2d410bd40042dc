"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
estimate of the squared maximum mean discrepancy between real and generated features under
the cubic polynomial kernel ``k(x, y) = (x . y / D + 1)^3``, averaged over random subsets.

Unlike FID it has an unbiased estimator, so it can be compared across sample sizes; its
spread over subsets says how much to trust a difference.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

from . import sources
from .features import FeatureNet
from .fid import _real_and_generated
from .statistics import as_feature_pair, as_features

__all__ = ["compute_kid", "kernel_inception_distance", "polynomial_mmd2"]


def polynomial_mmd2(x, y) -> float:
    """Unbiased MMD² of two equal-size sets ``x, y: [m, D]`` (m >= 2) under
    ``k(a, b) = (a . b / D + 1)^3``:
    ``sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m²``.
    """
    x, y = as_features(x, "x"), as_features(y, "y")
    if x.shape != y.shape or x.shape[0] < 2:
        raise ValueError(
            f"polynomial_mmd2: x and y must both be [m, D] with m >= 2, got {list(x.shape)} "
            f"and {list(y.shape)}"
        )
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    real_features,
    generated_features,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID from features: the mean and standard deviation of :func:`polynomial_mmd2` over
    ``num_subsets`` pairs of subsets, each drawn without replacement, of
    ``min(subset_size, N_real, N_generated)`` real and generated features.

    Args:
        real_features: ``[N_real, D]``.
        generated_features: ``[N_gen, D]``, same ``D``.
        num_subsets, subset_size: the paper's and NVlabs' defaults are 100 subsets of 1000.
        seed: seeds the subset draws (numpy ``default_rng``).

    Returns:
        ``(kid, std)``: ``kid`` is an unbiased estimate of MMD² (it can be slightly negative
        when the distributions match); ``std`` is the spread over subsets (ddof 0).
    """
    real, gen = as_feature_pair(
        real_features,
        generated_features,
        ("real_features", "generated_features"),
        "kernel_inception_distance",
    )
    for name, value in (("num_subsets", num_subsets), ("subset_size", subset_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"kernel_inception_distance: {name} must be a positive int, got {value!r}"
            )
    m = min(subset_size, real.shape[0], gen.shape[0])
    if m < 2:
        raise ValueError(
            f"kernel_inception_distance: needs at least 2 real and 2 generated features, got "
            f"{real.shape[0]} and {gen.shape[0]}"
        )
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            polynomial_mmd2(
                real[rng.choice(real.shape[0], m, replace=False)],
                gen[rng.choice(gen.shape[0], m, replace=False)],
            )
            for _ in range(num_subsets)
        ]
    )
    return float(values.mean()), float(values.std())


def compute_kid(
    generator_fn: Callable[[int], torch.Tensor],
    real_data: sources.RealData,
    feature_net: FeatureNet | torch.nn.Module | Callable | str | os.PathLike,
    num_gen: int,
    num_real: int | None = None,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    data_key: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    progress: bool = False,
) -> tuple[float, float]:
    """KID ``(mean, std)`` between ``num_gen`` images of ``generator_fn(batch) -> [batch, 3, H,
    W]`` and the first ``num_real`` of ``real_data`` (default: all of them, as NVlabs'
    kid50k_full), whose features are cached as FID's statistics are."""
    real, generated = _real_and_generated(
        generator_fn,
        real_data,
        feature_net,
        num_gen,
        num_real,
        keep_features=True,
        image_size=None,
        cache_dir=cache_dir,
        data_key=data_key,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    return kernel_inception_distance(
        real.features, generated.features, num_subsets, subset_size, seed
    )
