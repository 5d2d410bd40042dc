"""Progressive growing (PGGAN / StyleGAN1 "linear" structure): the level of detail ``lod``.

``lod`` runs from ``max_lod = log2(resolution) - 2`` (4x4 images) down to 0 (full resolution).
At ``lod = k + f`` (integer ``k``, fraction ``f``) the networks work at ``R_k = resolution /
2 ** k``, fading the ``R_k`` block in over the ``R_k / 2`` one: the generator outputs
``lerp(rgb(R_k), upsample(rgb(R_k / 2)), f)``, the discriminator reads
``lerp(block(fromrgb(x)), fromrgb(downsample(x)), f)``; images stay ``[N, C, resolution,
resolution]`` throughout (nearest-neighbour upsampled). Blocks above ``R_k`` are skipped.

The value lives in a persistent float buffer ``lod`` (checkpoints carry it); which blocks run
is a Python int derived from it (``set_lod`` and ``load_state_dict`` keep the two in step),
so ``torch.compile`` and CUDA graphs see static control flow and read the fade from the buffer.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F


def check_lod(owner: str, lod, max_lod: int, progressive: bool) -> float:
    """``lod`` as a float in ``[0, max_lod]``; fixed-resolution models accept only 0."""
    if isinstance(lod, torch.Tensor) and lod.numel() == 1:
        lod = lod.item()
    if isinstance(lod, bool) or not isinstance(lod, numbers.Real) or not math.isfinite(lod):
        raise TypeError(f"{owner}: lod must be a finite real number, got {lod!r}")
    lod = float(lod)
    if not progressive and lod != 0:
        raise ValueError(
            f"{owner}: this model has a fixed resolution (progressive=False); lod must be 0, "
            f"got {lod}"
        )
    if not 0 <= lod <= max_lod:
        raise ValueError(f"{owner}: lod must be in [0, max_lod] = [0, {max_lod}], got {lod}")
    return lod


class LodMixin:
    """Gives a module a ``lod`` buffer, ``set_lod`` and the Python-side block count.

    Call :meth:`_init_lod` in ``__init__`` after ``torch.nn.Module.__init__``.
    """

    def _init_lod(self, max_lod: int, progressive: bool) -> None:
        self.max_lod = max_lod
        self.progressive = progressive
        self.register_buffer("lod", torch.zeros([], dtype=torch.float32))
        self._lod_floor = 0
        self.register_load_state_dict_post_hook(_sync_lod_after_load)

    def set_lod(self, lod: float) -> None:
        """Sets the level of detail (``0 <= lod <= max_lod``; only 0 without progressive)."""
        lod = check_lod(type(self).__name__, lod, self.max_lod, self.progressive)
        with torch.no_grad():
            self.lod.fill_(lod)
        self._lod_floor = math.floor(lod)

    @property
    def lod_floor(self) -> int:
        """``floor(lod)``: how many of the highest-resolution blocks are skipped."""
        return self._lod_floor

    def _fade_alpha(self, like: torch.Tensor) -> torch.Tensor:
        """``clamp(lod - floor(lod), 0, 1)`` as a 0-d tensor in ``like``'s dtype/device, read
        from the buffer (so a captured graph follows later ``set_lod`` calls)."""
        return (self.lod - self._lod_floor).clamp(0, 1).to(dtype=like.dtype)


def _sync_lod_after_load(module, incompatible_keys) -> None:
    lod = check_lod(type(module).__name__, module.lod.item(), module.max_lod, module.progressive)
    module._lod_floor = math.floor(lod)


def lod_images(images: torch.Tensor, lod: float) -> torch.Tensor:
    """Full-resolution real images as a progressive network sees them at ``lod``.

    Box-downsample by ``2 ** floor(lod)``, cross-fade with the next coarser level by the
    fraction of ``lod``, and nearest-upsample back (StyleGAN1's training-loop processing of
    reals), so reals and ``G``'s output share one level of detail.

    Args:
        images: ``[N, C, H, W]`` floating, ``H`` and ``W`` divisible by ``2 ** ceil(lod)``.
        lod: ``>= 0``.

    Returns:
        ``[N, C, H, W]`` in ``images``' dtype.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError("lod_images: images must be a [N, C, H, W] tensor")
    if isinstance(lod, bool) or not isinstance(lod, numbers.Real) or not lod >= 0:
        raise ValueError(f"lod_images: lod must be a real number >= 0, got {lod!r}")
    level, fraction = math.floor(lod), lod - math.floor(lod)
    step = 2 ** (level + (1 if fraction > 0 else 0))
    if images.shape[2] % step or images.shape[3] % step:
        raise ValueError(
            f"lod_images: H and W ({images.shape[2]}x{images.shape[3]}) must be divisible by "
            f"{step} at lod {lod}"
        )
    x = F.avg_pool2d(images, 2**level) if level else images
    if fraction > 0:
        coarse = F.avg_pool2d(x, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        x = torch.lerp(x, coarse, fraction)
    if level:
        x = x.repeat_interleave(2**level, dim=2).repeat_interleave(2**level, dim=3)
    return x
