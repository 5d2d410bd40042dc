"""Images of seeds, behind ``stylegan-fast generate``.

Seed -> image: ``z = seed_to_z(seed)`` (standard normal from ``torch.Generator().
manual_seed(seed)`` on the CPU), ``w = G.mapping(z, c, psi, cutoff)``, ``img =
G.synthesis(w, noise_mode)``; with ``noise_mode="random"`` the noise images are drawn from
the seed too (:func:`noise_for_seed`), so every mode is reproducible per seed: the same
command writes the same bytes; another ``--batch`` may move a pixel by one level (batched
float arithmetic rounds differently).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..models.synthesis import NOISE_MODES
from . import _common


def map_latents(
    G,
    z: torch.Tensor,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
) -> torch.Tensor:
    """``w [N, num_ws, w_dim]`` on G's device: ``G.mapping`` of ``z [N, z_dim]`` with the
    one-hot labels of ``class_idx`` (for a conditional ``G``), without gradients."""
    device = G.w_avg.device
    c = _common.labels(G, class_idx, len(z))
    with torch.no_grad():
        return G.mapping(
            z.to(device), None if c is None else c.to(device), truncation_psi, truncation_cutoff
        )


def seed_ws(
    G,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
) -> torch.Tensor:
    """``w [len(seeds), num_ws, w_dim]`` of each seed's latent on G's device."""
    z = _common.seeds_to_z(seeds, G.z_dim)
    return map_latents(G, z, truncation_psi, truncation_cutoff, class_idx)


def synthesize(
    G,
    ws: torch.Tensor,
    noise_mode: str = "const",
    noise_seeds: Sequence[int] | None = None,
    batch_size: int = 8,
) -> torch.Tensor:
    """``G.synthesis`` of ``ws [N, num_ws, w_dim]`` in batches, without gradients; returns
    ``[N, C, R, R]`` on the CPU. ``noise_mode="random"`` needs ``noise_seeds`` (one per w):
    the noise of image i is :func:`noise_for_seed` of ``noise_seeds[i]``."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"--noise-mode: must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise_mode == "random" and (noise_seeds is None or len(noise_seeds) != ws.shape[0]):
        raise ValueError("synthesize: noise_mode='random' needs one noise seed per w")
    out = []
    device = ws.device
    for start in range(0, ws.shape[0], batch_size):
        w = ws[start : start + batch_size]
        noise = None
        if noise_mode == "random":
            per_seed = [_common.noise_for_seed(G, s) for s in noise_seeds[start : start + len(w)]]
            if per_seed[0] is not None:
                noise = [torch.cat(layer).to(device) for layer in zip(*per_seed)]
        with torch.no_grad():
            out.append(G.synthesis(w, noise_mode, noise).cpu())
    return torch.cat(out)


def generate_images(
    G,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
) -> torch.Tensor:
    """The images of ``seeds``: ``[len(seeds), C, R, R]`` float in about [-1, 1], on the CPU."""
    ws = seed_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx)
    return synthesize(G, ws, noise_mode, seeds, batch_size)


def grid_shape(count: int, cols: int | None = None) -> tuple[int, int]:
    """``(cols, rows)`` for ``count`` images: ``cols`` given, or the smallest square-ish
    layout (``ceil(sqrt(count))`` columns)."""
    cols = cols if cols is not None else math.ceil(math.sqrt(count))
    cols = min(cols, count)
    return cols, math.ceil(count / cols)
