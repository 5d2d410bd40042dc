"""``stylegan-fast generate``: one PNG per seed (and optionally a grid of them), through
:func:`stylegan_fast.tools.generate_images` (its module docstring has the seed -> image
recipe); or, with ``--projected-w`` (and ``--projected-noise``), the image of a latent that
``stylegan-fast project`` found, as ``proj.png`` (the same bytes as the projector's)."""

from __future__ import annotations

import argparse

from ..tools import _common
from ..tools.generate import generate_images, grid_shape
from ..tools.project import load_projected_noise, load_projected_w, render
from . import _arguments

HELP = "one PNG per seed (and a grid) from a checkpoint or export"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _arguments.add_network_arguments(parser)
    parser.add_argument(
        "--seeds", default=None, help="seeds, e.g. 0-9 or 0,3,5-7 (or give --projected-w)"
    )
    parser.add_argument(
        "--projected-w",
        default=None,
        metavar="FILE",
        help="render the w of a projected_w.npz (from `project`) to proj.png instead of seeds "
        "(no truncation, no mapping)",
    )
    parser.add_argument(
        "--projected-noise",
        default=None,
        metavar="FILE",
        help="with --projected-w: the projection's noise maps (projected_noise.npz); without "
        "it, --noise-mode decides",
    )
    _arguments.add_truncation_arguments(parser)
    _arguments.add_noise_mode_argument(
        parser,
        "const",
        "const: each layer's fixed noise (default); random: noise drawn from the seed; "
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
    if args.projected_w is not None:
        return _run_projected(args)
    if args.projected_noise is not None:
        raise ValueError("--projected-noise: needs --projected-w")
    if args.seeds is None:
        raise ValueError("--seeds: give the seeds to draw (or --projected-w FILE)")
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


def _run_projected(args: argparse.Namespace) -> int:
    """``proj.png`` of ``--projected-w`` with ``--projected-noise`` (or ``--noise-mode``)."""
    if args.seeds is not None:
        raise ValueError("--seeds: leave it out with --projected-w (the image is the w's)")
    if args.noise_mode == "random" and args.projected_noise is None:
        raise ValueError(
            "--noise-mode: random is not reproducible with --projected-w; give "
            "--projected-noise, or use const or none"
        )
    G = _arguments.load_network(args)
    w = load_projected_w(args.projected_w, G)
    noise = None
    if args.projected_noise is not None:
        noise = load_projected_noise(args.projected_noise, G)
    outdir = _arguments.make_outdir(args.outdir)
    image = render(G, w, noise, args.noise_mode)
    path = _common.save_png(_common.to_pixels(image)[0], outdir / "proj.png")
    print(f"wrote {path} ({G.resolution}x{G.resolution})")
    return 0
