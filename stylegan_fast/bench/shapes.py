"""Benchmark shapes taken from StyleGAN's layer configuration.

A synthesis layer at resolution ``R`` has ``channels_at(R)`` feature maps of ``R x R``. The
default set is the one the H100 anchor tables (``shared/anchors-h100.md``) and the kernel
targets are stated on: ``fmap_base = 16384``, ``fmap_max = 512`` at 8, 32, ..., 1024 px, i.e.
(C, H) = (512, 8), (512, 32), (512, 64), (256, 128), (128, 256), (64, 512), (32, 1024).
"""

from __future__ import annotations

import math

ANCHOR_RESOLUTIONS = (8, 32, 64, 128, 256, 512, 1024)
# CPU --quick: three layers small enough to time in seconds, from tiny planes (8 px) to the
# first anchor size the kernel targets apply to (64 px). 128 px made `bench --quick` take 74 s
# on an idle 2-core CPU (the eager reference's R1 of upsample2d alone: 0.63 s a rep).
QUICK_RESOLUTIONS = (8, 32, 64)


def channels_at(
    resolution: int, fmap_base: int = 16384, fmap_decay: float = 1.0, fmap_max: int = 512
) -> int:
    """Feature maps of a StyleGAN layer at ``resolution`` (StyleGAN's nf(stage) schedule with
    stage = log2(resolution) - 1)."""
    stage = int(math.log2(resolution)) - 1
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def layer_shapes(batch: int, quick: bool) -> list[tuple[str, tuple[int, int, int, int]]]:
    """``[("CxH", (N, C, H, H)), ...]`` for the benchmark's StyleGAN layers."""
    resolutions = QUICK_RESOLUTIONS if quick else ANCHOR_RESOLUTIONS
    return [(f"{channels_at(r)}x{r}", (batch, channels_at(r), r, r)) for r in resolutions]
