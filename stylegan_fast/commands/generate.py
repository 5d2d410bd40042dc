"""``stylegan-fast generate``: one PNG per seed (and optionally a grid of them), through
:func:`stylegan_fast.tools.generate_images` (its module docstring has the seed -> image
recipe)."""

from __future__ import annotations

import argparse

from ..models.synthesis import NOISE_MODES
from ..tools import _common
from ..tools.generate import generate_images, grid_shape
from . import _arguments

HELP = "one PNG per seed (and a grid) from a checkpoint or export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _arguments.add_network_arguments(parser)
    parser.add_argument("--seeds", required=True, help="seeds, e.g. 0-9 or 0,3,5-7")
    _arguments.add_truncation_arguments(parser)
    parser.add_argument(
        "--noise-mode",
        default="const",
        choices=NOISE_MODES,
        help="const: each layer's fixed noise (default); random: noise drawn from the seed; "
        "none: no noise",
    )
    _arguments.add_class_argument(parser)
    parser.add_argument(
        "--grid", action="store_true", help="also write grid.png with all the images"
    )
    parser.add_argument(
        "--grid-cols", type=int, default=None, help="columns of the grid (default: ~square)"
    )
    parser.add_argument("--batch", type=int, default=8, help="images per generator call (8)")


def run(args: argparse.Namespace) -> int:
    seeds = _arguments.parse_seeds(args.seeds)
    _arguments.positive("batch", args.batch)
    if args.grid_cols is not None:
        _arguments.positive("grid-cols", args.grid_cols)
    G = _arguments.load_network(args)
    outdir = _arguments.check_and_make_outdir(G, args)
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
