"""``stylegan-fast train``: trains a preset on a folder/zip of images or the bundled faces.

Multi-process (DDP): launch the same command with ``torchrun``, e.g. ``torchrun
--nproc_per_node 8 -m stylegan_fast.cli train --data faces.zip --device cuda ...``; ``--batch``
is the global batch, split over the ranks. On CPU the ranks use gloo.

The defaults are the main job's: the ``tiny`` preset on the bundled 100 faces, grown 8² ->
16² -> 32², tuned so a 2-core CPU shows face structure in minutes (see README).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ..models import Discriminator, Generator, preset_configs
from ..tools.figures import write_figures
from ..train import distributed
from ..train.config import MAIN_JOB, PRECISIONS, TrainingConfig
from ..train.data import open_dataset
from ..train.loop import Trainer

HELP = "train a preset on images or the bundled faces"

# The bundled faces are greyscale: a 3-channel model on them meets a discriminator that tells
# fakes by colour alone (measured: fake logits at -8..-10 from the first kimg of the runs tried).
BUNDLED_CHANNELS = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", help="folder or zip of PNG/JPEG images (default: the 100 bundled faces)"
    )
    parser.add_argument("--preset", default="tiny", help="model preset (default: tiny)")
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
        default=True,
        help="grow from 8x8 (default)",
    )
    growth.add_argument(
        "--fixed", dest="progressive", action="store_false", help="train at full resolution"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads (default: 1 for the tiny preset on CPU, else torch's default)",
    )
    parser.add_argument("--loss", default="logistic", choices=("logistic", "wgan-gp"))
    parser.add_argument("--workers", type=int, default=0, help="data loader processes")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")


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


def build_trainer(args: argparse.Namespace, context: distributed.DistributedContext) -> Trainer:
    channels = args.channels or (3 if args.data else BUNDLED_CHANNELS)
    g_config, d_config = preset_configs(
        args.preset, progressive=args.progressive, img_channels=channels
    )
    dataset = open_dataset(args.data, g_config.resolution, channels, xflip=args.mirror)
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
    )
    # Same seed, same initial weights on every rank (Trainer broadcasts rank 0's anyway).
    torch.manual_seed(args.seed)
    G = Generator.from_config(g_config, impl=args.impl)
    D = Discriminator.from_config(d_config, impl=args.impl)
    return Trainer(G, D, dataset, config, args.outdir, context, show_progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    _check(args)
    device = None if args.device == "auto" else args.device
    context = distributed.init_distributed(device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    elif context.device.type == "cpu" and args.preset == "tiny":
        # The tiny model's tensors are too small to split: measured on the shared 2-core
        # machine, a step at 8x8 took 0.08 s of CPU with 1 thread and 2.5 s with 2 (threads
        # waiting on each other), and one process per core is what torchrun gives anyway.
        torch.set_num_threads(1)
    try:
        trainer = build_trainer(args, context)
        if args.resume:
            trainer.resume(args.resume)
        distributed.print0(
            f"training {args.preset} on {trainer.dataset!r} for {args.kimg} kimg "
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
