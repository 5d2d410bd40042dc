"""Metrics of a training snapshot: a short list of metric names (``fid,kid,pr,ppl``) run
through :func:`evaluate_many` on one generator, as ``train --metrics`` computes them at every
snapshot: FID, KID and PR share one pass of generated images, and the real images' statistics
are cached under ``cache_dir``, so a run reads its real images through the feature network
once (the first snapshot), not at every snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from .evaluate import evaluate_many
from .features import FeatureNet

# Short name (the --metrics spelling) -> the evaluate() metric it runs, with its count
# replaced by the run's --metrics-num. PPL is measured at path end points in W and on whole
# images, as StyleGAN2-ADA's training-time PPL (ppl2_wend, no face crop: the data need not be
# aligned faces).
SNAPSHOT_METRICS = {"fid": "fid50k", "kid": "kid50k", "pr": "pr50k3", "ppl": "ppl_wend"}
FEATURE_METRICS = ("fid", "kid", "pr")


def parse_metric_names(text: str) -> list[str]:
    """``"fid,kid"`` -> ``["fid", "kid"]`` (order kept, duplicates dropped). ValueError naming
    ``--metrics`` for an empty list or an unknown name."""
    names = []
    for part in text.split(","):
        name = part.strip().lower()
        if name not in SNAPSHOT_METRICS:
            raise ValueError(
                f"--metrics: unknown metric {part.strip()!r} (expected a comma-separated list "
                f"of {', '.join(SNAPSHOT_METRICS)})"
            )
        if name not in names:
            names.append(name)
    return names


class SnapshotMetrics:
    """``metrics(G) -> {name: value}``: the metrics ``names`` of generator ``G``.

    Args:
        names: from :data:`SNAPSHOT_METRICS` (``fid``, ``kid``, ``pr``, ``ppl``).
        num: generated images (and the cap on real images) per metric; PPL: paths.
        feature_net: for fid/kid/pr. data: the real images, at G's resolution.
        distance_net: for ppl, ``d(img0, img1) -> [N]``.
        seed: the latents' and noise's seed: every snapshot is measured on the same draws.
        cache_dir, data_key: the real-statistics cache (see ``real_feature_statistics``).

    The values: ``fid``; ``kid`` and ``kid_std``; ``precision`` and ``recall``; ``ppl``; and
    ``seconds/<name>`` for each metric (FID's, KID's and PR's each include the image pass
    they share).
    """

    def __init__(
        self,
        names: list[str],
        num: int,
        feature_net: FeatureNet | None = None,
        data=None,
        distance_net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
        data_key: str | None = None,
        batch_size: int | None = None,
    ):
        unknown = [name for name in names if name not in SNAPSHOT_METRICS]
        if unknown or not names:
            raise ValueError(f"names must be some of {tuple(SNAPSHOT_METRICS)}, got {names!r}")
        if any(name in FEATURE_METRICS for name in names) and (feature_net is None or data is None):
            raise ValueError(f"{', '.join(FEATURE_METRICS)} need feature_net and data")
        if "ppl" in names and distance_net is None:
            raise ValueError("ppl needs distance_net, a perceptual distance d(a, b) -> [N]")
        self.names = list(names)
        self.num = num
        self.feature_net = feature_net
        self.data = data
        self.distance_net = distance_net
        self.seed = seed
        self.cache_dir = cache_dir
        self.data_key = data_key
        self.batch_size = batch_size

    def __call__(self, G: torch.nn.Module) -> dict[str, float]:
        results = evaluate_many(
            [SNAPSHOT_METRICS[name] for name in self.names],
            G,
            feature_net=self.feature_net,
            data=self.data,
            distance_net=self.distance_net,
            num=self.num,
            num_real=self.num,
            batch_size=self.batch_size,
            seed=self.seed,
            cache_dir=self.cache_dir,
            data_key=self.data_key,
            crop=None,
        )
        values: dict[str, float] = {}
        for name in self.names:
            result = results[SNAPSHOT_METRICS[name]]
            if name == "pr":
                values["precision"], values["recall"] = result["precision"], result["recall"]
            else:
                values[name] = result["value"]
            if name == "kid":
                values["kid_std"] = result["std"]
            values[f"seconds/{name}"] = result["seconds"]
        return values
