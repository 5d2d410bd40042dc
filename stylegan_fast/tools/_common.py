"""What every generation tool shares: seed -> latent, labels, explicit per-seed noise, and
images -> pixels -> PNG figures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..models.synthesis import noise_seed

# train.images is the one part of train that tools may import (see the package docstring):
# the training data's pixel convention, which figures must invert exactly.
from ..train.images import float_to_uint8


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of ``seed``: ``z [z_dim]`` float32, standard normal, drawn on the CPU from
    ``torch.Generator().manual_seed(seed)`` (so one seed gives one z on every device and in
    every batch)."""
    rng = torch.Generator().manual_seed(int(seed))
    return torch.randn([z_dim], generator=rng, dtype=torch.float32)


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """``[len(seeds), z_dim]``: :func:`seed_to_z` of each seed."""
    return torch.stack([seed_to_z(s, z_dim) for s in seeds])


def noise_for_seed(G, seed: int, batch: int = 1) -> list[torch.Tensor] | None:
    """Per-layer noise images ``[batch, 1, R, R]`` (one entry per w layer) drawn on the CPU from
    ``seed`` (a generator separate from the latent's, seeded with ``noise_seed(seed)``), or None
    when ``G`` has no noise inputs. Passing these as ``synthesis(w, noise=...)`` makes
    ``noise_mode="random"`` reproducible per seed, whatever the batch or device."""
    if not getattr(G.synthesis, "use_noise", True):
        return None
    rng = torch.Generator().manual_seed(noise_seed(seed))
    return [
        torch.randn([batch, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2)], generator=rng)
        for i in range(G.num_ws)
    ]


def labels(G, class_idx: int | None, batch: int) -> torch.Tensor | None:
    """One-hot ``[batch, c_dim]`` labels of ``class_idx`` for a conditional ``G`` (None for an
    unconditional one); ValueError when the class is missing, out of range or not wanted."""
    c_dim = int(G.c_dim)
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError("--class: this generator is unconditional (c_dim=0); leave it out")
        return None
    if class_idx is None:
        raise ValueError(f"--class: this generator is conditional; give a class in [0, {c_dim})")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"--class: must be in [0, {c_dim}), got {class_idx}")
    c = torch.zeros([batch, c_dim])
    c[:, class_idx] = 1
    return c


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] (C = 1 or 3) -> ``uint8 [N, H, W, C]``."""
    return float_to_uint8(images.detach().cpu()).permute(0, 2, 3, 1).numpy()


def to_pil(pixels: np.ndarray) -> Image.Image:
    """``uint8 [H, W, C]`` (C = 1 or 3) -> a Pillow image (mode L or RGB)."""
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def save_png(pixels: np.ndarray, path: str | os.PathLike) -> Path:
    path = Path(path)
    to_pil(pixels).save(path, format="PNG")
    return path


def compose(cells: Sequence[Sequence[np.ndarray | None]], background: int = 255) -> np.ndarray:
    """Tiles rows of ``uint8 [H, W, C]`` cells (None: a blank cell) of one size into one
    ``uint8 [rows * H, cols * W, C]`` array; rows may be shorter than the longest."""
    filled = [cell for row in cells for cell in row if cell is not None]
    if not filled:
        raise ValueError("compose: no images")
    h, w, c = filled[0].shape
    cols = max(len(row) for row in cells)
    canvas = np.full([len(cells) * h, cols * w, c], background, dtype=np.uint8)
    for r, row in enumerate(cells):
        for k, cell in enumerate(row):
            if cell is not None:
                canvas[r * h : (r + 1) * h, k * w : (k + 1) * w] = cell
    return canvas
