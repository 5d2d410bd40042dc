"""Interpolation, behind ``stylegan-fast interpolate``: frames along the path through several
seeds' latents — a lerp of the (truncated) w's in W, or a slerp of the z's in Z (then mapped) —
as one strip image and optionally an animated GIF (:func:`strip`, :func:`save_gif`).

Each segment between consecutive seeds has ``frames`` frames, its two ends included (shared
with the next segment), so the path has ``(len(seeds) - 1) * (frames - 1) + 1`` frames and
its first and last frames are the seeds' own images. Truncation is affine in w, so lerping
truncated w's equals truncating the lerped ones.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import _common
from .generate import map_latents, seed_ws, synthesize

SPACES = ("w", "z")


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of ``a, b: [..., D]`` at scalar ``t``: ``(sin((1 - t) θ) a +
    sin(t θ) b) / sin θ`` with θ the angle between them (a lerp when they are parallel).
    Exact at the ends: ``t = 0`` returns ``a``, ``t = 1`` returns ``b`` bit for bit."""
    a64, b64 = a.double(), b.double()
    cos = (a64 * b64).sum(-1, keepdim=True) / (
        a64.norm(dim=-1, keepdim=True) * b64.norm(dim=-1, keepdim=True)
    )
    theta = torch.acos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(theta)
    if bool((sin < 1e-6).any()):
        return torch.lerp(a, b, t)
    wa = (torch.sin((1.0 - t) * theta) / sin).to(a.dtype)
    wb = (torch.sin(t * theta) / sin).to(a.dtype)
    return wa * a + wb * b


def path_positions(num_seeds: int, frames: int) -> list[tuple[int, float]]:
    """``(segment, t)`` of every frame: ``frames`` per segment, shared ends counted once."""
    positions = []
    for segment in range(num_seeds - 1):
        first = 0 if segment == 0 else 1
        positions += [(segment, k / (frames - 1)) for k in range(first, frames)]
    return positions


def interpolation(
    G,
    seeds: Sequence[int],
    frames: int = 8,
    space: str = "w",
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
) -> torch.Tensor:
    """The frames ``[F, C, R, R]`` (on the CPU) of the path through ``seeds`` (two or more).
    With ``noise_mode="random"`` every frame uses the first seed's noise, so only the
    latent moves."""
    if len(seeds) < 2:
        raise ValueError(f"--seeds: interpolation needs two or more seeds, got {len(seeds)}")
    if frames < 2:
        raise ValueError(f"--frames: must be >= 2 (both ends of a segment), got {frames}")
    if space not in SPACES:
        raise ValueError(f"--space: must be one of {SPACES}, got {space!r}")
    positions = path_positions(len(seeds), frames)
    if space == "w":
        ends = seed_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx)
        ws = torch.stack([torch.lerp(ends[s], ends[s + 1], t) for s, t in positions])
    else:
        z_ends = _common.seeds_to_z(seeds, G.z_dim)
        z = torch.stack([slerp(z_ends[s], z_ends[s + 1], t) for s, t in positions])
        ws = map_latents(G, z, truncation_psi, truncation_cutoff, class_idx)
    return synthesize(G, ws, noise_mode, [seeds[0]] * len(ws), batch_size)


def strip(pixels: np.ndarray, frames_per_row: int | None = None) -> np.ndarray:
    """Frames ``uint8 [F, H, W, C]`` side by side, ``frames_per_row`` to a row (default all):
    ``uint8 [rows * H, min(F, frames_per_row) * W, C]``."""
    per_row = len(pixels) if frames_per_row is None else frames_per_row
    return _common.compose([list(pixels[i : i + per_row]) for i in range(0, len(pixels), per_row)])


def save_gif(pixels: np.ndarray, path: str | os.PathLike, fps: float) -> Path:
    """Frames ``uint8 [F, H, W, C]`` as an animated GIF at ``fps`` frames per second, looping."""
    path = Path(path)
    frames = [_common.to_pil(p) for p in pixels]
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=round(1000 / fps),
        loop=0,
    )
    return path
