"""Evaluation metrics for generators: FID, KID and precision/recall (against a feature
network the user supplies; nothing is downloaded) and perceptual path length (against a
user-supplied perceptual distance).

- :func:`evaluate` computes a named metric (``fid50k``, ``fid10k``, ``kid50k``, ``pr50k3``,
  ``ppl_w``, ``ppl_z``, ...) of a ``stylegan_fast.models.Generator`` (or anything with its
  interface); :mod:`.snapshot`: a short list of them (``fid,kid,pr,ppl``) during training.
- :mod:`.fid`: :func:`frechet_distance`, :func:`feature_statistics`, :func:`compute_fid`,
  cached real-image statistics; :mod:`.kid`: :func:`kernel_inception_distance`,
  :func:`compute_kid`; :mod:`.ppl`: :func:`perceptual_path_length`, :func:`path_distances`.
- :mod:`.precision_recall`: improved precision and recall (k-NN manifolds) of feature sets.
- :mod:`.features`: :class:`FeatureNet` (TorchScript file, state dict + module, or any
  module/callable) and where the standard Inception-v3 weights come from.
"""

from .evaluate import METRICS, evaluate, evaluate_many, generator_images
from .features import PREPROCESSING, FeatureNet, Preprocessing, load_feature_net
from .fid import (
    FeatureStatistics,
    compute_fid,
    feature_statistics,
    frechet_distance,
    generated_feature_statistics,
    real_feature_statistics,
)
from .kid import compute_kid, kernel_inception_distance, polynomial_mmd2
from .ppl import PPLResult, path_distances, perceptual_path_length
from .precision_recall import knn_radii, manifold_coverage, precision_recall
from .sources import files_fingerprint

__all__ = [
    "METRICS",
    "PREPROCESSING",
    "FeatureNet",
    "FeatureStatistics",
    "PPLResult",
    "Preprocessing",
    "compute_fid",
    "compute_kid",
    "evaluate",
    "evaluate_many",
    "feature_statistics",
    "files_fingerprint",
    "frechet_distance",
    "generated_feature_statistics",
    "generator_images",
    "kernel_inception_distance",
    "knn_radii",
    "load_feature_net",
    "manifold_coverage",
    "path_distances",
    "perceptual_path_length",
    "polynomial_mmd2",
    "precision_recall",
    "real_feature_statistics",
]
