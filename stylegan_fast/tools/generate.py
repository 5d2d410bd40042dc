"""``stylegan-fast generate``: one PNG per seed (and optionally a grid of them).

Seed -> image: ``z = seed_to_z(seed)`` (standard normal from ``torch.Generator().
manual_seed(seed)`` on the CPU), ``w = G.mapping(z, c, psi, cutoff)``, ``img =
G.synthesis(w, noise_mode)``; with ``noise_mode="random"`` the noise images are drawn from
the seed too (:func:`noise_for_seed`), so every mode is reproducible per seed: the same
command writes the same bytes; another ``--batch`` may move a pixel by one level (batched
float arithmetic rounds differently).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import torch

from ..models.synthesis import NOISE_MODES
from . import _common


def seed_ws(
    G,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
) -> torch.Tensor:
    """``w [len(seeds), num_ws, w_dim]`` of each seed's latent on G's device."""
    device = G.w_avg.device
    z = _common.seeds_to_z(seeds, G.z_dim).to(device)
    c = _common.labels(G, class_idx, len(seeds))
    with torch.no_grad():
        return G.mapping(z, None if c is None else c.to(device), truncation_psi, truncation_cutoff)


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.add_network_arguments(parser)
    parser.add_argument("--seeds", required=True, help="seeds, e.g. 0-9 or 0,3,5-7")
    _common.add_truncation_arguments(parser)
    parser.add_argument(
        "--noise-mode",
        default="const",
        choices=NOISE_MODES,
        help="const: each layer's fixed noise (default); random: noise drawn from the seed; "
        "none: no noise",
    )
    _common.add_class_argument(parser)
    parser.add_argument(
        "--grid", action="store_true", help="also write grid.png with all the images"
    )
    parser.add_argument(
        "--grid-cols", type=int, default=None, help="columns of the grid (default: ~square)"
    )
    parser.add_argument("--batch", type=int, default=8, help="images per generator call (8)")


def run(args: argparse.Namespace) -> int:
    seeds = _common.parse_seeds(args.seeds)
    _common.positive("batch", args.batch)
    if args.grid_cols is not None:
        _common.positive("grid-cols", args.grid_cols)
    G = _common.load_network(args)
    _common.check_truncation(G, args.trunc, args.trunc_cutoff)
    _common.labels(G, args.class_idx, 1)  # argument errors before any work
    outdir = _common.make_outdir(args.outdir)
    images = generate_images(
        G, seeds, args.trunc, args.trunc_cutoff, args.noise_mode, args.class_idx, args.batch
    )
    pixels = _common.to_pixels(images)
    for seed, image in zip(seeds, pixels):
        _common.save_png(image, outdir / f"seed{seed:04d}.png")
    print(f"wrote {len(seeds)} images ({G.resolution}x{G.resolution}) to {outdir}")
    if args.grid:
        cols, rows = grid_shape(len(seeds), args.grid_cols)
        cells = [list(pixels[r * cols : (r + 1) * cols]) for r in range(rows)]
        path = _common.save_png(_common.compose(cells), outdir / "grid.png")
        print(f"wrote {path} ({cols}x{rows} images)")
    return 0
