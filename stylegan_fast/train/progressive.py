"""Progressive growing (PGGAN / StyleGAN): the level-of-detail schedule over training images,
the learning rate per resolution, and the real images faded to the current level of detail.

``lod`` counts halvings of the final resolution R: lod 0 trains at R, lod k at R / 2^k; a
fractional lod fades between two levels. The schedule starts at ``initial_resolution`` and,
for each level, trains ``training_kimg`` thousand images, then fades the next level in over
``transition_kimg``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F


def _is_power_of_two(value) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 1
        and (value & (value - 1)) == 0
    )


@dataclasses.dataclass(frozen=True)
class ProgressiveSchedule:
    """StyleGAN's growing schedule (defaults: its FFHQ settings: start at 8², 600k images per
    level and 600k per fade-in).

    Args:
        resolution: final resolution R (power of two, >= 4).
        initial_resolution: resolution of the first level (power of two, 4..R).
        training_kimg: thousands of images trained at each level before the next fades in.
        transition_kimg: thousands of images over which a new level fades in (0: jump).
    """

    resolution: int
    initial_resolution: int = 8
    training_kimg: float = 600.0
    transition_kimg: float = 600.0

    def __post_init__(self):
        if not _is_power_of_two(self.resolution) or self.resolution < 4:
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution!r}")
        if not _is_power_of_two(self.initial_resolution) or not (
            4 <= self.initial_resolution <= self.resolution
        ):
            raise ValueError(
                f"initial_resolution must be a power of two in [4, {self.resolution}], got "
                f"{self.initial_resolution!r}"
            )
        if not self.training_kimg >= 0 or not self.transition_kimg >= 0:
            raise ValueError("training_kimg and transition_kimg must be >= 0")
        if (
            self.training_kimg + self.transition_kimg <= 0
            and self.initial_resolution < self.resolution
        ):
            raise ValueError("training_kimg + transition_kimg must be > 0 to grow")

    @property
    def max_lod(self) -> int:
        return int(math.log2(self.resolution)) - 2

    def lod(self, images_seen: int) -> float:
        """The level of detail after ``images_seen`` training images."""
        start = math.log2(self.resolution) - math.log2(self.initial_resolution)
        phase = self.training_kimg + self.transition_kimg
        if phase <= 0:
            return float(start) if start > 0 else 0.0
        kimg = images_seen / 1000.0
        phase_index = math.floor(kimg / phase)
        phase_kimg = kimg - phase_index * phase
        lod = start - phase_index
        if self.transition_kimg > 0:
            lod -= max(phase_kimg - self.training_kimg, 0.0) / self.transition_kimg
        return max(float(lod), 0.0)

    def resolution_at(self, lod: float) -> int:
        """The resolution being trained (or faded in) at ``lod``."""
        return self.resolution >> int(math.floor(lod))


def learning_rate(
    base: float, per_resolution: Mapping[int, float] | None, resolution: int
) -> float:
    """``per_resolution[resolution]`` if given, else ``base`` (StyleGAN's FFHQ schedule:
    base 0.001, ``{128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}``)."""
    if per_resolution and resolution in per_resolution:
        return float(per_resolution[resolution])
    return float(base)


def fade_reals(images: torch.Tensor, lod: float) -> torch.Tensor:
    """Real images as the networks see them at ``lod``: box-downsampled by ``2^floor(lod)``,
    cross-faded with their next-coarser level by ``lod - floor(lod)``, and nearest-upsampled
    back to ``[N, C, R, R]`` (the models' outputs at every lod have the full size).

    ``lod = 0`` returns ``images`` unchanged.
    """
    if lod < 0:
        raise ValueError(f"lod must be >= 0, got {lod}")
    if lod == 0:
        return images
    level = int(math.floor(lod))
    fraction = lod - level
    size = images.shape[-1]
    if size % (2 ** (level + (1 if fraction > 0 else 0))):
        raise ValueError(f"images of size {size} cannot be downsampled to lod {lod}")
    x = F.avg_pool2d(images, 2**level) if level else images
    if fraction > 0:
        coarser = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(x, coarser, fraction)
    if level:
        x = F.interpolate(x, scale_factor=2**level, mode="nearest")
    return x
