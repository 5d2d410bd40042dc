"""``stylegan-fast train``: trains a preset on a folder/zip of images or the bundled faces.

Multi-process (DDP): launch the same command with ``torchrun``, e.g. ``torchrun
--nproc_per_node 8 -m stylegan_fast.cli train --data faces.zip --device cuda ...``; ``--batch``
is the global batch, split over the ranks. On CPU the ranks use gloo.

The defaults are the main job's: the ``tiny`` preset on the bundled 100 faces, grown 8² ->
16² -> 32², tuned so a 2-core CPU shows face structure in minutes (see README).

Labels: ``--cond`` trains a class-conditional G and D with ``c_dim`` = the number of classes in
the data's ``dataset.json`` (or ``--labels FILE``); without it a labelled set trains
unconditionally (with a notice). ``--metrics fid,kid,pr,ppl`` measures the EMA generator at
every snapshot (:class:`stylegan_fast.metrics.snapshot.SnapshotMetrics`) into
``metrics.jsonl`` and keeps ``best.safetensors`` (lowest FID).
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import torch

from ..metrics.precision_recall import K_NEAREST
from ..metrics.snapshot import FEATURE_METRICS, SnapshotMetrics, parse_metric_names
from ..models import Discriminator, Generator, preset_configs
from ..pretrained.finetune import init_networks
from ..tools.figures import write_figures
from ..train import distributed
from ..train.checkpoint import IMPORTED_KEY, load_checkpoint
from ..train.config import MAIN_JOB, PRECISIONS, TrainingConfig
from ..train.data import open_dataset
from ..train.loop import Trainer
from . import _arguments

HELP = "train a preset on images or the bundled faces"

# Images per snapshot metric: enough to rank snapshots of a short run, few enough that a CPU
# run spends minutes, not hours, on them (the papers' 50k are for the final numbers).
DEFAULT_METRICS_NUM = 1000
# The bundled faces are greyscale: a 3-channel model on them meets a discriminator that tells
# fakes by colour alone (measured: fake logits at -8..-10 from the first kimg of the runs tried).
BUNDLED_CHANNELS = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", help="folder or zip of PNG/JPEG images (default: the 100 bundled faces)"
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="model preset (default: tiny; with --init: the file's own architecture)",
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="image channels of the model and data (default: 1 for the greyscale bundled "
        "faces, 3 with --data; greyscale files are replicated to RGB, colour ones converted)",
    )
    parser.add_argument(
        "--batch", type=int, default=MAIN_JOB["batch"], help="global batch (default: 8)"
    )
    parser.add_argument(
        "--batch-gpu", type=int, help="images per rank per round (gradient accumulation)"
    )
    parser.add_argument(
        "--kimg", type=float, default=MAIN_JOB["kimg"], help="thousands of images to train"
    )
    parser.add_argument(
        "--lr", type=float, default=MAIN_JOB["lr"], help="Adam learning rate of G and D"
    )
    parser.add_argument(
        "--impl", default="auto", help="op implementation: auto, ref, cpp, cuda, triton"
    )
    parser.add_argument("--precision", default="fp32", choices=tuple(PRECISIONS))
    parser.add_argument(
        "--outdir", default="runs/train", help="run directory (checkpoints, samples, stats)"
    )
    parser.add_argument("--resume", metavar="CHECKPOINT", help="continue from this checkpoint")
    parser.add_argument(
        "--init",
        metavar="FILE",
        help="fine-tune: start from the weights of an export, checkpoint, NVlabs .pkl or "
        "rosinality file (fresh optimizers and progress, the file's fixed resolution)",
    )
    parser.add_argument(
        "--freeze-d",
        type=int,
        default=0,
        metavar="N",
        help="FreezeD: hold D's fromRGB and its N highest-resolution blocks fixed (default 0)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--snap",
        type=float,
        default=MAIN_JOB["snap"],
        metavar="KIMG",
        help="checkpoint and sample-grid interval in kimg",
    )
    parser.add_argument(
        "--r1-gamma", type=float, default=MAIN_JOB["r1_gamma"], help="R1 weight (0: off)"
    )
    parser.add_argument(
        "--r1-interval", type=int, default=MAIN_JOB["r1_interval"], help="lazy R1 every N steps"
    )
    parser.add_argument(
        "--ema-kimg", type=float, default=MAIN_JOB["ema_kimg"], help="G EMA half-life in kimg"
    )
    parser.add_argument(
        "--lod-kimg",
        type=float,
        default=MAIN_JOB["lod_kimg"],
        help="progressive: kimg per level and per fade-in",
    )
    parser.add_argument(
        "--mirror", action=argparse.BooleanOptionalAction, default=True, help="x-flip reals"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    growth = parser.add_mutually_exclusive_group()
    growth.add_argument(
        "--progressive",
        dest="progressive",
        action="store_true",
        default=None,
        help="grow from 8x8 (default without --init)",
    )
    growth.add_argument(
        "--fixed",
        dest="progressive",
        action="store_false",
        help="train at full resolution (always with --init)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads (default: 1 for the tiny preset on CPU, else torch's default)",
    )
    parser.add_argument("--loss", default="logistic", choices=("logistic", "wgan-gp"))
    parser.add_argument("--workers", type=int, default=0, help="data loader processes")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    labels = parser.add_argument_group("labels")
    labels.add_argument(
        "--cond",
        action="store_true",
        help="class-conditional G and D (c_dim = the number of classes in the data's "
        "dataset.json or --labels); without it labels are ignored",
    )
    labels.add_argument(
        "--labels",
        metavar="FILE",
        help='with --cond: labels from this JSON file ({"labels": [[path, int], ...]}) '
        "instead of the data's dataset.json",
    )
    metrics = parser.add_argument_group("metrics at every snapshot (of the EMA generator)")
    metrics.add_argument(
        "--metrics",
        metavar="LIST",
        help="comma-separated: fid, kid, pr (precision and recall, k=3), ppl (W, end points); "
        "appended to metrics.jsonl; best.safetensors keeps the lowest FID",
    )
    metrics.add_argument(
        "--metrics-num",
        type=int,
        default=DEFAULT_METRICS_NUM,
        metavar="N",
        help=f"generated images (and cap on real ones) per metric; PPL: paths (default "
        f"{DEFAULT_METRICS_NUM}; the papers' 50000)",
    )
    _arguments.add_metric_network_arguments(metrics)


def _check(args: argparse.Namespace) -> None:
    for name in ("batch", "r1_interval"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("kimg", "snap", "lr", "ema_kimg"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
    if not (math.isfinite(args.r1_gamma) and args.r1_gamma >= 0):
        raise ValueError(f"--r1-gamma must be >= 0, got {args.r1_gamma}")
    if not (math.isfinite(args.lod_kimg) and args.lod_kimg >= 0):
        raise ValueError(f"--lod-kimg must be >= 0, got {args.lod_kimg}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.resume is not None and not Path(args.resume).is_file():
        raise ValueError(f"--resume: no checkpoint file at {args.resume}")
    if args.init is not None:
        if args.resume is not None:
            raise ValueError("--init and --resume exclude each other (--resume continues a run)")
        if not Path(args.init).is_file():
            raise ValueError(f"--init: no such file: {args.init}")
        if args.progressive:
            raise ValueError("--init fine-tunes at the file's fixed resolution; drop --progressive")
    if args.freeze_d < 0:
        raise ValueError(f"--freeze-d must be >= 0, got {args.freeze_d}")
    if args.labels is not None:
        if not args.cond:
            raise ValueError("--labels: labels are used only with --cond")
        _arguments.check_file("labels", args.labels)
    if args.cond and args.data is None:
        raise ValueError("--cond: the bundled faces have no labels; give --data with labels")
    _check_metrics(args)


def _check_metrics(args: argparse.Namespace) -> list[str]:
    """The ``--metrics`` names; ValueError naming the option for what they need and lack."""
    if args.metrics is None:
        for option in ("feature_net", "distance_net"):
            if getattr(args, option) is not None:
                name = option.replace("_", "-")
                raise ValueError(f"--{name}: used only with --metrics")
        return []
    names = parse_metric_names(args.metrics)
    feature_metrics = [name for name in names if name in FEATURE_METRICS]
    if feature_metrics and args.feature_net is None:
        raise ValueError(
            f"--feature-net: --metrics {','.join(feature_metrics)} needs a feature network file"
        )
    if "ppl" in names and args.distance_net is None:
        raise ValueError("--distance-net: --metrics ppl needs a perceptual distance file")
    # PR's k-NN radii need more than k points in each set.
    minimum = K_NEAREST + 1 if "pr" in names else 2
    _arguments.positive("metrics-num", args.metrics_num, minimum)
    _arguments.check_file("feature-net", args.feature_net)
    _arguments.check_file("distance-net", args.distance_net)
    return names


def _open_data(args: argparse.Namespace, resolution: int, channels: int):
    """The training set, labelled for ``--cond`` (ValueError if it has no labels), else with
    its labels dropped (and a one-line notice that they were)."""
    if args.data is None:
        return open_dataset(None, resolution, channels, xflip=args.mirror)
    dataset = open_dataset(args.data, resolution, channels, xflip=args.mirror, labels=args.labels)
    if args.cond and dataset.label_dim == 0:
        raise ValueError(
            f"--cond: {args.data} has no labels (no dataset.json, or its labels are null); "
            "give them with --labels FILE"
        )
    if not args.cond and dataset.label_dim:
        distributed.print0(
            f"note: {args.data} has {dataset.label_dim} label classes; training "
            "unconditionally (add --cond to condition G and D on them)"
        )
        dataset.drop_labels()
    return dataset


def _snapshot_metrics(args, dataset, outdir: str, device) -> SnapshotMetrics | None:
    """``--metrics`` as the trainer's snapshot hook; the networks are loaded here, before
    training, so a bad file stops the run at once."""
    names = _check_metrics(args)
    if not names:
        return None
    feature_net = distance_net = None
    if any(name in FEATURE_METRICS for name in names):
        feature_net = _arguments.load_feature_net(args, device)
    if "ppl" in names:
        distance_net = _arguments.load_distance_net(args.distance_net, device)
    return SnapshotMetrics(
        names,
        args.metrics_num,
        feature_net=feature_net,
        data=dataset,
        distance_net=distance_net,
        seed=args.seed,
        # In the run folder: the real statistics are computed at the first snapshot and
        # read back at the others (and after a resume into the same folder).
        cache_dir=Path(outdir) / "metrics-cache",
        data_key=repr(dataset),
    )


def _imported(path: str) -> bool:
    """Whether ``path`` is a checkpoint written by ``stylegan-fast import``: weights only, no
    optimizer or progress, so ``--resume`` of it starts a fine-tuning run like ``--init``."""
    return IMPORTED_KEY in load_checkpoint(path)


def _init_networks(args: argparse.Namespace):
    """``(G, D, G_ema)`` from ``--init`` (weights only, the file's fixed resolution), fitted to
    ``--preset``/``--channels`` when given."""
    g_config = d_config = None
    if args.preset is not None:
        g_config, d_config = preset_configs(args.preset, progressive=False)
        if args.channels is not None:
            g_config = g_config.replace(img_channels=args.channels)
            d_config = d_config.replace(img_channels=args.channels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        networks = init_networks(args.init, impl=args.impl, g_config=g_config, d_config=d_config)
    for warning in caught:  # e.g. no discriminator in the file: one line, not a traceback
        distributed.print0(f"note: {warning.message}")
    G = networks["G"]
    if args.channels is not None and args.channels != G.img_channels:
        raise ValueError(
            f"--channels: {args.init} makes {G.img_channels}-channel images, not {args.channels}"
        )
    return G, networks["D"], networks["G_ema"]


def _networks_and_data(args: argparse.Namespace):
    """``(G, D, G_ema or None, dataset)``: new networks from the preset, conditional on the
    data's classes with ``--cond``; or ``--init``'s, whose label count the data must match."""
    if args.init is not None:
        G, D, G_ema = _init_networks(args)
        # The images are read (cropped, resized) at the network's resolution and channels.
        dataset = _open_data(args, G.resolution, G.img_channels)
        if dataset.label_dim != G.c_dim:
            raise ValueError(
                f"--init: {args.init} takes {G.c_dim} label classes but the data gives "
                f"{dataset.label_dim} (--cond trains on the data's labels)"
            )
        return G, D, G_ema, dataset
    channels = args.channels or (3 if args.data else BUNDLED_CHANNELS)
    g_config, d_config = preset_configs(
        args.preset or "tiny", progressive=args.progressive is not False, img_channels=channels
    )
    dataset = _open_data(args, g_config.resolution, channels)
    if dataset.label_dim:  # --cond: G and D take one-hot labels of the data's classes
        g_config = g_config.replace(c_dim=dataset.label_dim)
        d_config = d_config.replace(c_dim=dataset.label_dim)
    G = Generator.from_config(g_config, impl=args.impl)
    D = Discriminator.from_config(d_config, impl=args.impl)
    return G, D, None, dataset


def build_trainer(args: argparse.Namespace, context: distributed.DistributedContext) -> Trainer:
    # Same seed, same initial weights on every rank (Trainer broadcasts rank 0's anyway).
    torch.manual_seed(args.seed)
    G, D, G_ema, dataset = _networks_and_data(args)
    config = TrainingConfig(
        total_kimg=args.kimg,
        batch_size=args.batch,
        batch_gpu=args.batch_gpu,
        loss=args.loss,
        r1_gamma=args.r1_gamma,
        r1_interval=args.r1_interval,
        g_lr=args.lr,
        d_lr=args.lr,
        initial_resolution=8,
        lod_training_kimg=args.lod_kimg,
        lod_transition_kimg=args.lod_kimg,
        ema_half_life_kimg=args.ema_kimg,
        ema_rampup=0.05,
        precision=args.precision,
        seed=args.seed,
        data_workers=args.workers,
        log_kimg=min(args.snap, 0.5),
        sample_kimg=args.snap,
        checkpoint_kimg=args.snap,
        freeze_d=args.freeze_d,
    )
    return Trainer(
        G, D, dataset, config, args.outdir, context, G_ema=G_ema,
        show_progress=not args.no_progress,
        snapshot_metrics=_snapshot_metrics(args, dataset, args.outdir, context.device),
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.resume is not None and _imported(args.resume):
        print(f"{args.resume} is an imported checkpoint (weights only): starting from it as --init")
        args.init, args.resume = args.resume, None
        _check(args)
    device = None if args.device == "auto" else args.device
    context = distributed.init_distributed(device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif context.device.type == "cpu" and args.init is None and args.preset in (None, "tiny"):
        # The tiny model's tensors are too small to split: measured on the shared 2-core
        # machine, a step at 8x8 took 0.08 s of CPU with 1 thread and 2.5 s with 2 (threads
        # waiting on each other), and one process per core is what torchrun gives anyway.
        torch.set_num_threads(1)
    try:
        trainer = build_trainer(args, context)
        if args.resume:
            trainer.resume(args.resume)
        conditional = f", {trainer.G.c_dim} classes" if trainer.G.c_dim else ""
        distributed.print0(
            f"training {args.init or args.preset or 'tiny'}{conditional} on {trainer.dataset!r} "
            f"for {args.kimg} kimg "
            f"(batch {args.batch}, {context.world_size} process(es), {context.device}) "
            f"-> {args.outdir}"
        )
        trainer.run()
        trainer.close()
        if context.is_main:
            for path in write_figures(trainer.G_ema, args.outdir):
                print(f"wrote {path}")
            print(f"wrote {Path(args.outdir) / 'generator.safetensors'}")
    finally:
        distributed.shutdown()
    return 0
