"""Fréchet Inception Distance (Heusel et al. 2017): the Fréchet distance between Gaussians
fitted to feature-network embeddings of real and generated images, in float64.

``FID = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``; the trace of
the matrix square root is the sum of the square roots of the eigenvalues of ``sigma1 @
sigma2`` (real and >= 0 for covariance matrices: the product is similar to the positive
semi-definite ``sigma1^(1/2) sigma2 sigma1^(1/2)``), so no matrix square root is formed.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch

from . import cache, sources
from .features import FeatureNet, load_feature_net
from .statistics import RunningStatistics, feature_statistics

__all__ = [
    "EIGENVALUE_TOLERANCE",
    "FeatureStatistics",
    "compute_fid",
    "feature_statistics",
    "frechet_distance",
    "generated_feature_statistics",
    "real_feature_statistics",
]

# Relative to the spectral scale (the largest |eigenvalue| of sigma1 @ sigma2, or of one
# sigma): imaginary parts and negative real parts up to this are rounding noise and dropped
# (measured: ~1e-16 for float64 covariances of 2048-d features, 100 to 1000 samples); larger
# ones mean the inputs are not covariance matrices, and are refused.
EIGENVALUE_TOLERANCE = 1e-6


def _check_stats(mu, sigma, which: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu.detach().cpu() if isinstance(mu, torch.Tensor) else mu, np.float64)
    sigma = np.asarray(
        sigma.detach().cpu() if isinstance(sigma, torch.Tensor) else sigma, np.float64
    )
    if mu.ndim != 1:
        raise ValueError(f"frechet_distance: mu{which} must be [D], got shape {list(mu.shape)}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise ValueError(
            f"frechet_distance: sigma{which} must be [D, D] = [{d}, {d}] to match mu{which}, "
            f"got {list(sigma.shape)}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"frechet_distance: mu{which}/sigma{which} contain NaN or inf")
    scale = np.abs(sigma).max(initial=0.0)
    if np.abs(sigma - sigma.T).max(initial=0.0) > EIGENVALUE_TOLERANCE * scale:
        raise ValueError(f"frechet_distance: sigma{which} must be symmetric (a covariance)")
    eigenvalues = scipy.linalg.eigvalsh(sigma) if d else np.zeros(0)
    if d and eigenvalues.min() < -EIGENVALUE_TOLERANCE * max(eigenvalues.max(), 0.0):
        raise ValueError(
            f"frechet_distance: sigma{which} must be positive semi-definite (a covariance); "
            f"it has eigenvalue {eigenvalues.min():.3g}"
        )
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and
    ``N(mu2, sigma2)``, in float64.

    Args:
        mu1, mu2: ``[D]`` means (numpy arrays or tensors).
        sigma1, sigma2: ``[D, D]`` covariances (symmetric positive semi-definite).

    Returns:
        The distance as a Python float, >= 0 (a result below 0 can only be rounding, and is
        returned as 0).

    Eigenvalues of ``sigma1 @ sigma2`` with imaginary or negative parts within
    :data:`EIGENVALUE_TOLERANCE` of the largest are rounding noise: real parts are kept and
    clipped at 0. Larger ones raise ``ValueError``.
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"frechet_distance: the two sets of statistics have different feature dimensions "
            f"({mu1.shape[0]} and {mu2.shape[0]}); were they made with one feature network?"
        )
    eigenvalues = scipy.linalg.eigvals(sigma1 @ sigma2) if mu1.size else np.zeros(0)
    scale = np.abs(eigenvalues).max(initial=0.0)
    limit = EIGENVALUE_TOLERANCE * scale
    if eigenvalues.size and (
        np.abs(eigenvalues.imag).max() > limit or eigenvalues.real.min() < -limit
    ):
        worst = eigenvalues[np.argmax(np.abs(eigenvalues.imag) + np.maximum(-eigenvalues.real, 0))]
        raise ValueError(
            f"frechet_distance: sigma1 @ sigma2 has eigenvalue {worst:.3g}, beyond rounding "
            f"(tolerance {limit:.3g}); covariances give real non-negative ones"
        )
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum()
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return max(float(distance), 0.0)


@dataclasses.dataclass
class FeatureStatistics:
    """Statistics of ``num`` images' features: ``mu [D]``, ``sigma [D, D]`` (float64) and,
    when asked for, the features themselves ``[num, D]`` (float32, for KID)."""

    mu: np.ndarray
    sigma: np.ndarray
    num: int
    features: np.ndarray | None = None
    cache_hit: bool = False
    cache_path: str | None = None


def _accumulate(feature_net, batches, keep_features: bool, total: int | None, progress: bool):
    from tqdm.auto import tqdm

    running = RunningStatistics(keep_features=keep_features)
    with tqdm(total=total, unit="img", disable=not progress, leave=False) as bar:
        for features in feature_net.features(batches):
            running.update(features)
            bar.update(features.shape[0])
    return running


def _statistics(running: RunningStatistics, keep_features: bool) -> FeatureStatistics:
    return FeatureStatistics(
        mu=running.mean,
        sigma=running.covariance,
        num=running.num,
        features=running.features if keep_features else None,
    )


def _image_size(size, name: str) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return (size, size)
    if (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    ):
        return tuple(size)
    raise ValueError(f"{name} must be None, a positive int or (height, width), got {size!r}")


def _check_count(name: str, num, minimum: int = 2) -> int | None:
    if num is None:
        return None
    if isinstance(num, bool) or not isinstance(num, int) or num < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {num!r}")
    return num


def real_feature_statistics(
    data: sources.RealData,
    feature_net: FeatureNet | torch.nn.Module | Callable | str | os.PathLike,
    num: int | None = None,
    keep_features: bool = False,
    image_size: int | tuple[int, int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    data_key: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    progress: bool = False,
) -> FeatureStatistics:
    """Feature statistics of the first ``num`` real images (all if None), cached.

    Args:
        data: see :func:`stylegan_fast.metrics.sources.real_batches`.
        feature_net: see :func:`stylegan_fast.metrics.features.load_feature_net`.
        num: how many images; fewer if ``data`` has fewer (at least 2 are needed).
        keep_features: also return the ``[num, D]`` features (KID needs them).
        image_size: the size the images must have (the generator's), as a side or
            ``(height, width)``; None for any.
        cache_dir: where the ``.npz`` entries live; None: no caching. An entry is keyed by the
            data's fingerprint (``data_key``, or see :func:`sources.data_fingerprint`), the
            feature network and its preprocessing, the image count and resolution, and
            ``keep_features`` (an entry with the features also serves a call without).
        data_key: a string naming the data (e.g. a dataset path plus a version), used instead
            of fingerprinting it; the caller answers for it changing when the data do.
    """
    _check_count("num", num)
    image_size = _image_size(image_size, "image_size")
    feature_net = load_feature_net(feature_net, batch_size=batch_size)
    first = next(sources.real_batches(data, 1, 1), None)
    if first is None:
        raise ValueError("real data: no images")
    side = tuple(first.shape[-2:])
    if image_size is not None and side != image_size:
        raise ValueError(
            f"real images are {side[0]}x{side[1]} but the generator makes "
            f"{image_size[0]}x{image_size[1]}; build the dataset at the generator's resolution"
        )
    available = sources.count_images(data)
    if num is None or available is None:
        expected = available if num is None else num
    else:
        expected = min(num, available)
    key = None
    if cache_dir is not None:
        key = {
            "data": data_key if data_key is not None else sources.data_fingerprint(data, num),
            "feature_net": feature_net.cache_identity,
            "num": expected if expected is not None else "all",
            "resolution": list(side),
            "keep_features": keep_features,
        }
        found = key
        stored = cache.load_cached(cache_dir, key)
        if stored is None and not keep_features:
            # An entry that kept the features (KID's, PR's) holds the same mean and covariance.
            found = {**key, "keep_features": True}
            stored = cache.load_cached(cache_dir, found)
        if stored is not None:
            return FeatureStatistics(
                mu=stored["mu"],
                sigma=stored["sigma"],
                num=int(stored["num"]),
                features=stored["features"] if keep_features else None,
                cache_hit=True,
                cache_path=cache.cache_file(cache_dir, found),
            )
    batches = sources.real_batches(data, num, batch_size, num_workers)
    running = _accumulate(feature_net, batches, keep_features, expected, progress)
    if running.num < 2:
        raise ValueError(f"real data: a covariance needs at least 2 images, got {running.num}")
    stats = _statistics(running, keep_features)
    if key is not None:
        arrays = {"mu": stats.mu, "sigma": stats.sigma, "num": np.array(stats.num)}
        if keep_features:
            arrays["features"] = stats.features
        stats.cache_path = cache.save_cached(cache_dir, key, arrays)
    return stats


def generated_feature_statistics(
    generator_fn: Callable[[int], torch.Tensor],
    feature_net: FeatureNet | torch.nn.Module | Callable | str | os.PathLike,
    num: int,
    keep_features: bool = False,
    image_size: int | tuple[int, int] | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> FeatureStatistics:
    """Feature statistics of ``num`` images from ``generator_fn(batch) -> [batch, 3, H, W]``
    (float in ``[-1, 1]``); ``image_size``: the size they must have (the real images'), as a
    side or ``(height, width)``; None for any."""
    _check_count("num", num)
    image_size = _image_size(image_size, "image_size")
    feature_net = load_feature_net(feature_net, batch_size=batch_size)

    def checked():
        for images in sources.generated_batches(generator_fn, num, batch_size):
            if image_size is not None and tuple(images.shape[-2:]) != image_size:
                raise ValueError(
                    f"generated images are {images.shape[-2]}x{images.shape[-1]}, the real "
                    f"ones {image_size[0]}x{image_size[1]}: compare images of one resolution"
                )
            yield images

    running = _accumulate(feature_net, checked(), keep_features, num, progress)
    return _statistics(running, keep_features)


def _real_and_generated(
    generator_fn,
    real_data,
    feature_net,
    num_gen,
    num_real,
    keep_features,
    image_size,
    cache_dir,
    data_key,
    batch_size,
    num_workers,
    progress,
) -> tuple[FeatureStatistics, FeatureStatistics]:
    """``(real, generated)``: :func:`real_feature_statistics` of the first ``num_real`` images
    of ``real_data`` (cached) and :func:`generated_feature_statistics` of ``num_gen`` images
    of ``generator_fn``, through one feature network. ``image_size``: the size both sets must
    have; None: the generated images must have the real ones' (read from the first)."""
    feature_net = load_feature_net(feature_net, batch_size=batch_size)
    real = real_feature_statistics(
        real_data,
        feature_net,
        num=num_real,
        keep_features=keep_features,
        image_size=image_size,
        cache_dir=cache_dir,
        data_key=data_key,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    if image_size is None:
        image_size = tuple(next(sources.real_batches(real_data, 1, 1)).shape[-2:])
    generated = generated_feature_statistics(
        generator_fn,
        feature_net,
        num_gen,
        keep_features=keep_features,
        image_size=image_size,
        batch_size=batch_size,
        progress=progress,
    )
    return real, generated


def compute_fid(
    generator_fn: Callable[[int], torch.Tensor],
    real_data: sources.RealData,
    feature_net: FeatureNet | torch.nn.Module | Callable | str | os.PathLike,
    num_gen: int,
    num_real: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    data_key: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    progress: bool = False,
) -> float:
    """FID between ``num_gen`` images of ``generator_fn(batch) -> [batch, 3, H, W]`` (float in
    ``[-1, 1]``) and the first ``num_real`` of ``real_data`` (default: ``num_gen``, or all if
    fewer), whose statistics are cached in ``cache_dir`` (see
    :func:`real_feature_statistics`). Both sets must have one resolution."""
    _check_count("num_gen", num_gen)
    real, generated = _real_and_generated(
        generator_fn,
        real_data,
        feature_net,
        num_gen,
        num_real if num_real is not None else num_gen,
        keep_features=False,
        image_size=None,
        cache_dir=cache_dir,
        data_key=data_key,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress,
    )
    return frechet_distance(real.mu, real.sigma, generated.mu, generated.sigma)
