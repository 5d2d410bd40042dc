"""Mean and covariance of feature vectors in float64, over all features at once or streamed
batch by batch (50k x 2048 Inception features need not be held to get their statistics)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["RunningStatistics", "feature_statistics"]


def as_features(features, name: str = "features") -> np.ndarray:
    """``features`` (a tensor or array-like) as a float64 ``[N, D]`` array; ValueError naming
    ``name`` for another shape or for NaN/inf values. FID's statistics and KID share it."""
    if isinstance(features, torch.Tensor):
        features = features.detach().to("cpu", torch.float64).numpy()
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must be [N, D], got shape {list(features.shape)}")
    if not np.isfinite(features).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    return features


def as_feature_pair(
    first, second, names: tuple[str, str], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`as_features` of two sets that must come from one feature network: ValueError
    (prefixed ``what``) when their dimensions differ."""
    first, second = as_features(first, names[0]), as_features(second, names[1])
    if first.shape[1] != second.shape[1]:
        raise ValueError(
            f"{what}: {names[0]} and {names[1]} have different dimensions ({first.shape[1]} "
            f"and {second.shape[1]}); one feature network for both"
        )
    return first, second


class RunningStatistics:
    """Streamed mean and unbiased covariance of ``[N, D]`` features, in float64.

    Batches are merged with Chan et al.'s pairwise update (``M2 += M2_b + delta delta^T
    n_a n_b / n``), so a large mean does not cancel the covariance away as the raw-moment
    formula ``E[x x^T] - mu mu^T`` would.
    """

    def __init__(self, keep_features: bool = False):
        self.num = 0
        self.mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self.keep_features = keep_features
        self._kept: list[np.ndarray] = []

    def update(self, features) -> None:
        """Adds ``features: [B, D]``."""
        x = as_features(features)
        if x.shape[0] == 0:
            return
        if self.mean is not None and x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"features have {x.shape[1]} dimensions, earlier batches had {self.mean.shape[0]}"
            )
        batch_mean = x.mean(axis=0)
        centred = x - batch_mean
        batch_m2 = centred.T @ centred
        if self.mean is None:
            self.num, self.mean, self._m2 = x.shape[0], batch_mean, batch_m2
        else:
            total = self.num + x.shape[0]
            delta = batch_mean - self.mean
            self._m2 += batch_m2 + np.outer(delta, delta) * (self.num * x.shape[0] / total)
            self.mean = self.mean + delta * (x.shape[0] / total)
            self.num = total
        if self.keep_features:
            self._kept.append(x.astype(np.float32))

    @property
    def covariance(self) -> np.ndarray:
        """``[D, D]``, normalised by ``N - 1``."""
        if self.num < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.num}")
        return self._m2 / (self.num - 1)

    @property
    def features(self) -> np.ndarray:
        """All features added, ``[N, D]`` float32 (only with ``keep_features=True``)."""
        if not self.keep_features:
            raise ValueError("RunningStatistics was made with keep_features=False")
        if not self._kept:
            return np.zeros((0, 0), dtype=np.float32)
        return np.concatenate(self._kept)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """``features: [N, D]`` (tensor or array, N >= 2) -> ``(mu [D], sigma [D, D])`` in
    float64; sigma is the unbiased (``N - 1``) covariance, as in the FID papers' code."""
    x = as_features(features)
    if x.shape[0] < 2:
        raise ValueError(
            f"feature_statistics: a covariance needs at least 2 feature vectors, got {x.shape[0]}"
        )
    mu = x.mean(axis=0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)
