"""``stylegan-fast metrics``: one metric of a checkpoint or export through
:func:`stylegan_fast.metrics.evaluate`, printed as a JSON line and appended to
``metrics.jsonl`` next to the network file.

FID/KID and precision/recall (``pr50k3``: k = 3 nearest-neighbour manifolds, Kynkäänniemi et al.
2019; the line holds ``precision`` and ``recall``) need the real images (``--data``: a folder or zip
of images, read at the generator's resolution; left out: the bundled faces) and a feature network
file (``--feature-net``: a TorchScript file, by default taken to be NVlabs' Inception-v3
``inception-2015-12-05.pt`` and preprocessed as it expects; see
:mod:`stylegan_fast.metrics.features` for where it comes from). PPL needs a perceptual distance file
(``--distance-net``: a TorchScript module ``d(img0, img1) -> [N]`` on images in [-1, 1], e.g. an
exported LPIPS-VGG). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
from pathlib import Path

from ..metrics import METRICS, evaluate
from ..train.data import open_dataset
from . import _arguments

HELP = "FID/KID/PR/PPL of a checkpoint or export (appends to metrics.jsonl)"
RESULTS_FILE = "metrics.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _arguments.add_network_arguments(parser, outdir=False)
    parser.add_argument("--metric", required=True, choices=sorted(METRICS), help="which metric")
    parser.add_argument(
        "--data",
        default=None,
        help="FID/KID/PR real images: a folder or zip (default: the bundled lfw faces)",
    )
    _arguments.add_metric_network_arguments(parser)
    parser.add_argument(
        "--num", type=int, default=None, help="generated images / paths (default: the metric's)"
    )
    parser.add_argument("--num-real", type=int, default=None, help="cap on real images")
    parser.add_argument("--batch", type=int, default=None, help="images per call (64; PPL 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latents (0)")
    parser.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1: the papers')")
    parser.add_argument(
        "--crop", default="paper", choices=("paper", "none"), help="PPL's face crop (paper)"
    )
    _arguments.add_noise_mode_argument(
        parser, None, "generator noise (default: random for FID/KID/PR, const for PPL)"
    )
    parser.add_argument("--cache-dir", default=None, help="cache of real-image statistics")
    parser.add_argument("--progress", action="store_true", help="show progress bars")


def run(args: argparse.Namespace) -> int:
    spec = METRICS[args.metric]
    for name in ("num", "num_real"):
        value = getattr(args, name)
        if value is not None and value < 2:
            raise ValueError(f"--{name.replace('_', '-')}: must be >= 2, got {value}")
    if args.batch is not None:
        _arguments.positive("batch", args.batch)
    if not math.isfinite(args.trunc) or not 0 <= args.trunc <= 1:
        raise ValueError(f"--trunc: must be in [0, 1], got {args.trunc}")
    device = _arguments.resolve_device(args.device)
    feature_net = distance_net = data = None
    if spec.kind == "ppl":
        if args.distance_net is None:
            raise ValueError(f"--distance-net: {args.metric} needs a perceptual distance file")
        distance_net = _arguments.load_distance_net(args.distance_net, device)
    else:
        if args.feature_net is None:
            raise ValueError(f"--feature-net: {args.metric} needs a feature network file")
        _arguments.check_file("feature-net", args.feature_net)
        if args.data is not None and not os.path.exists(args.data):
            raise ValueError(f"--data: no such file or directory: {args.data}")
    G = _arguments.load_network(args)
    if spec.kind != "ppl":
        feature_net = _arguments.load_feature_net(args, device, args.batch or 64)
        data = open_dataset(args.data, G.resolution, G.img_channels)
    result = evaluate(
        args.metric,
        G,
        feature_net=feature_net,
        data=data,
        distance_net=distance_net,
        num=args.num,
        num_real=args.num_real,
        batch_size=args.batch,
        seed=args.seed,
        cache_dir=args.cache_dir,
        truncation_psi=args.trunc,
        noise_mode=args.noise_mode,
        crop=None if args.crop == "none" else "paper",
        progress=args.progress,
    )
    record = {
        **result,
        "network": os.path.abspath(args.network),
        "data": None if spec.kind == "ppl" else (args.data or "bundled:lfw_subset"),
        "feature_net": args.feature_net,
        "distance_net": args.distance_net,
        "truncation_psi": args.trunc,
        "noise_mode": args.noise_mode or ("const" if spec.kind == "ppl" else "random"),
        "seed": args.seed,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    line = json.dumps(record, allow_nan=True)
    print(line)
    results = Path(args.network).resolve().parent / RESULTS_FILE
    with open(results, "a") as stream:
        stream.write(line + "\n")
    return 0
