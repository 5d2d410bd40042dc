"""Improved precision and recall (Kynkäänniemi et al. 2019), k-NN manifold estimates in a
feature space.

Each set of feature vectors stands for a manifold: the union of balls centred on its points,
each ball's radius the distance from its point to that point's k-th nearest neighbour in the
same set (the point itself not counted; the paper's k = 3). Then

- precision = the fraction of generated features inside the real manifold (how many fakes
  look real),
- recall = the fraction of real features inside the generated manifold (how much of the real
  variety the generator covers).

A point on a ball's boundary counts as inside. Distances are Euclidean, computed in float64
in blocks, so memory stays ``O(block * N)``.
"""

from __future__ import annotations

import torch

from .statistics import as_feature_pair, as_features

__all__ = ["K_NEAREST", "knn_radii", "manifold_coverage", "precision_recall"]

K_NEAREST = 3  # the paper's (and NVlabs' pr50k3) neighbourhood size
_BLOCK = 1024  # rows of the distance matrix per block (1024 x 50k float64: 400 MB)


def _as_features(features, name: str) -> torch.Tensor:
    # FID's and KID's checks (shape [N, D], finite), then float64 tensors for torch.cdist.
    return torch.from_numpy(as_features(features, name))


def knn_radii(features, k: int = K_NEAREST) -> torch.Tensor:
    """``[N]``: each point's distance to its ``k``-th nearest other point of ``features``
    (``[N, D]``, ``N > k``)."""
    features = _as_features(features, "features")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if features.shape[0] <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} points, got {len(features)}")
    radii = []
    for start in range(0, len(features), _BLOCK):
        distances = torch.cdist(features[start : start + _BLOCK], features)
        # The k+1 smallest include the point itself at distance 0.
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def manifold_coverage(manifold, radii: torch.Tensor, queries) -> float:
    """The fraction of ``queries`` (``[M, D]``) inside the manifold of ``manifold``
    (``[N, D]``) with ball ``radii`` (``[N]``, from :func:`knn_radii`): a query is inside
    when its distance to some manifold point is at most that point's radius."""
    manifold, queries = (
        torch.from_numpy(features)
        for features in as_feature_pair(
            manifold, queries, ("manifold", "queries"), "manifold_coverage"
        )
    )
    if radii.shape != (len(manifold),):
        raise ValueError(f"radii must be [N] = [{len(manifold)}], got {list(radii.shape)}")
    inside = 0
    radii = radii.to(torch.float64)
    for start in range(0, len(queries), _BLOCK):
        distances = torch.cdist(queries[start : start + _BLOCK], manifold)
        inside += int((distances <= radii).any(dim=1).sum())
    return inside / len(queries)


def precision_recall(real_features, generated_features, k: int = K_NEAREST) -> tuple[float, float]:
    """``(precision, recall)`` of ``generated_features`` (``[M, D]``) against
    ``real_features`` (``[N, D]``), both with more than ``k`` rows, each in [0, 1]."""
    real = _as_features(real_features, "real_features")
    generated = _as_features(generated_features, "generated_features")
    precision = manifold_coverage(real, knn_radii(real, k), generated)
    recall = manifold_coverage(generated, knn_radii(generated, k), real)
    return precision, recall
