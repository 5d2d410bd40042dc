"""``stylegan-fast noise``: the stochastic-variation figure of
:func:`stylegan_fast.tools.noise_variation` (``noise.png``: samples and the std map) and the
std map alone (``noise-std.png``)."""

from __future__ import annotations

import argparse

from ..tools import _common
from ..tools.noise import NOISE_MODES, noise_figure, noise_variation
from . import _arguments

HELP = "stochastic variation: one latent, many noise draws, the std map"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _arguments.add_network_arguments(parser)
    parser.add_argument("--seed", type=int, required=True, help="the latent's seed")
    parser.add_argument(
        "--samples", type=int, default=4, help="images with different noise to show (4)"
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=100,
        help="noise draws behind the standard-deviation map (100, as the paper)",
    )
    _arguments.add_truncation_arguments(parser)
    _arguments.add_class_argument(parser)
    _arguments.add_noise_mode_argument(
        parser,
        "random",
        "random (default); none renders without noise, a control whose map is black",
        choices=NOISE_MODES,
    )
    parser.add_argument("--batch", type=int, default=8, help="images per generator call (8)")


def run(args: argparse.Namespace) -> int:
    seed = args.seed
    if not 0 <= seed <= _arguments.MAX_SEED:
        raise ValueError(f"--seed: must be in [0, {_arguments.MAX_SEED}], got {seed}")
    _arguments.positive("samples", args.samples)
    _arguments.positive("draws", args.draws, 2)
    _arguments.positive("batch", args.batch)
    G = _arguments.load_network(args)
    outdir = _arguments.check_and_make_outdir(G, args)
    images, std = noise_variation(
        G,
        seed,
        args.samples,
        args.draws,
        args.trunc,
        args.trunc_cutoff,
        args.class_idx,
        args.noise_mode,
        args.batch,
    )
    figure, std_map = noise_figure(images, std)
    _common.save_png(std_map, outdir / "noise-std.png")
    path = _common.save_png(figure, outdir / "noise.png")
    print(
        f"wrote {path}: {args.samples} noise samples of seed {seed} and the std map over "
        f"{args.draws} draws (max std {float(std.max()):.4g}, mean {float(std.mean()):.4g}, in "
        "image units where [-1, 1] is black to white; the map is scaled to its max)"
    )
    return 0
