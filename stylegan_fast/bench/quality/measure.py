"""Scores of generated digits: FID and KID against the real digits in the classifier's feature
space (``stylegan_fast.metrics``' statistics and distances), and the fraction of pixels a
generator puts outside [-1, 1] (what a saved PNG clips away)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np
import torch

from ...metrics import load_feature_net
from ...metrics.evaluate import generator_images
from ...metrics.fid import frechet_distance
from ...metrics.kid import kernel_inception_distance
from ...metrics.statistics import feature_statistics


def fraction_outside(images: torch.Tensor, low: float = -1.0, high: float = 1.0) -> float:
    """The fraction of the values of ``images`` (any shape) below ``low`` or above ``high``."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError("images must be a floating-point tensor")
    if images.numel() == 0:
        raise ValueError("images is empty")
    return float(((images < low) | (images > high)).float().mean())


def high_frequency_energy(images: torch.Tensor) -> float:
    """Speckle as a number: the mean absolute difference between ``images: [N, C, H, W]`` and
    their 3x3 box blur (replicate padding, so borders are not counted as edges). Salt-and-
    pepper noise raises it far above a smooth image's; compare with the reals' value."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError("images must be a floating-point tensor [N, C, H, W]")
    x = images.float().clamp(-1.0, 1.0)  # what a saved image shows
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    blurred = torch.nn.functional.avg_pool2d(padded, 3, stride=1)
    return float((x - blurred).abs().mean())


def noise_strengths(G: torch.nn.Module) -> dict[str, float]:
    """Mean ``|noise_strength|`` of each synthesis layer, keyed ``"<R>.<layer>"`` (e.g.
    ``"32.1"``): how much per-pixel noise each layer adds before its activation."""
    out = {}
    for block in G.synthesis.blocks:
        for index, layer in enumerate((block.layer0, block.layer1)):
            strength = getattr(layer.epilogue, "noise_strength", None)
            if strength is not None:
                out[f"{block.resolution}.{index}"] = float(strength.detach().abs().mean())
    return out


def sample_generator(
    G: torch.nn.Module, num: int, seed: int = 0, batch: int = 200, noise_mode: str = "random"
) -> torch.Tensor:
    """``num`` images ``[num, C, R, R]`` of ``G`` (``noise_mode``, no truncation), the latents
    from ``seed`` (``metrics.evaluate.generator_images``) and the synthesis noise from torch's
    generator seeded with ``seed`` inside a forked RNG (the caller's RNG state is untouched)."""
    generate = generator_images(G, seed, noise_mode=noise_mode)
    chunks = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        for start in range(0, num, batch):
            chunks.append(generate(min(batch, num - start)).float().cpu())
    return torch.cat(chunks)


@dataclasses.dataclass
class DigitsScorer:
    """FID/KID of image sets against fixed real images, in one feature network's space.

    Args:
        feature_net: a path to the exported TorchScript classifier features (or anything
            ``load_feature_net`` takes); preprocessing "identity".
        reals: ``[M, C, R, R]`` in [-1, 1].
        kid_subset_size: KID's subset size (capped at the smaller set).
    """

    feature_net: object
    reals: torch.Tensor
    kid_subsets: int = 100
    kid_subset_size: int = 1000

    def __post_init__(self):
        self.net = load_feature_net(self.feature_net, preprocessing="identity", batch_size=256)
        self.real_features = self.features(self.reals)
        self.real_mu, self.real_sigma = feature_statistics(self.real_features)

    def features(self, images: torch.Tensor) -> np.ndarray:
        """``[N, C, R, R]`` -> ``[N, D]`` float64."""
        return np.concatenate([f.double().numpy() for f in self.net.features([images])])

    def score(self, images: torch.Tensor, seed: int = 0) -> dict[str, float]:
        """``{"fid", "kid", "kid_std", "outside", "speckle"}`` of ``images: [N, C, R, R]``
        (N >= 2); ``speckle`` is :func:`high_frequency_energy`."""
        features = self.features(images)
        mu, sigma = feature_statistics(features)
        kid, kid_std = kernel_inception_distance(
            self.real_features, features, self.kid_subsets, self.kid_subset_size, seed
        )
        return {
            "fid": frechet_distance(self.real_mu, self.real_sigma, mu, sigma),
            "kid": kid,
            "kid_std": kid_std,
            "outside": fraction_outside(images),
            "speckle": high_frequency_energy(images),
        }

    def score_generator(self, G: torch.nn.Module, num: int, seed: int = 0) -> dict[str, float]:
        """:meth:`score` of ``num`` images from :func:`sample_generator`."""
        return self.score(sample_generator(G, num, seed), seed)

    def score_sampler(self, sample: Callable[[int], torch.Tensor], num: int, seed: int = 0):
        """:meth:`score` of ``sample(num)`` (any generator written as a function)."""
        return self.score(sample(num), seed)


def real_split_scores(
    feature_net: str | os.PathLike, reals: torch.Tensor, seed: int = 0, **options
) -> dict[str, float]:
    """The floor: scores of one random half of ``reals`` against the other half."""
    order = torch.randperm(len(reals), generator=torch.Generator().manual_seed(seed))
    half = len(reals) // 2
    scorer = DigitsScorer(feature_net, reals[order[:half]], **options)
    return scorer.score(reals[order[half:]], seed)
