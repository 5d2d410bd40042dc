"""``stylegan-fast interpolate``: the frames of :func:`stylegan_fast.tools.interpolation`
through several seeds, as one strip PNG and optionally an animated GIF."""

from __future__ import annotations

import argparse
import math

from ..tools import _common
from ..tools.interpolate import SPACES, interpolation, save_gif, strip
from . import _arguments

HELP = "frames between seeds (lerp in W, slerp in Z): strip and GIF"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _arguments.add_network_arguments(parser)
    parser.add_argument("--seeds", required=True, help="two or more seeds, e.g. 0,1 or 0-3")
    parser.add_argument(
        "--space", default="w", choices=SPACES, help="w: lerp in W (default); z: slerp in Z"
    )
    parser.add_argument(
        "--frames", type=int, default=8, help="frames per segment, both ends included (8)"
    )
    _arguments.add_truncation_arguments(parser)
    _arguments.add_noise_mode_argument(parser, "const", choices=("const", "random", "none"))
    _arguments.add_class_argument(parser)
    parser.add_argument("--gif", action="store_true", help="also write interpolate.gif")
    parser.add_argument("--fps", type=float, default=12.0, help="GIF frames per second (12)")
    parser.add_argument("--batch", type=int, default=8, help="images per generator call (8)")


def run(args: argparse.Namespace) -> int:
    seeds = _arguments.parse_seeds(args.seeds)
    _arguments.positive("batch", args.batch)
    _arguments.positive("frames", args.frames, 2)
    if len(seeds) < 2:
        raise ValueError(f"--seeds: interpolation needs two or more seeds, got {len(seeds)}")
    if not (math.isfinite(args.fps) and args.fps > 0):
        raise ValueError(f"--fps: must be a positive number, got {args.fps}")
    G = _arguments.load_network(args)
    outdir = _arguments.check_and_make_outdir(G, args)
    images = interpolation(
        G,
        seeds,
        args.frames,
        args.space,
        args.trunc,
        args.trunc_cutoff,
        args.noise_mode,
        args.class_idx,
        args.batch,
    )
    pixels = _common.to_pixels(images)
    path = _common.save_png(strip(pixels), outdir / "interpolate.png")
    print(f"wrote {path}: {len(pixels)} frames in {args.space.upper()}")
    if args.gif:
        print(f"wrote {save_gif(pixels, outdir / 'interpolate.gif', args.fps)}")
    return 0
