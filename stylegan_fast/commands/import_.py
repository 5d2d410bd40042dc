"""``stylegan-fast import``: a network file from elsewhere (an NVlabs StyleGAN1 ``.pkl``, a
rosinality checkpoint) or from here, written as our files:

- ``DIR/generator.safetensors``: the generator export (the file's ``G_ema``: NVlabs' ``Gs``,
  rosinality's ``g_running``), what ``generate``, ``mix``, ``interpolate``, ``noise`` and
  ``metrics`` read;
- ``DIR/checkpoint.safetensors``: a weights-only checkpoint with ``G``, ``D`` and ``G_ema``
  (``G`` is the ``G_ema`` where the file has no trained ``G``; ``D`` is left out where it has
  none). ``train --init`` fine-tunes from it, and ``train --resume`` of it does the same
  (it holds no optimizer or progress to resume: both start fresh).

``--list`` prints the architecture found instead and writes nothing. The file is recognised
by its content (:func:`stylegan_fast.pretrained.load_networks`); a pickle is read by a
restricted unpickler that executes nothing, a PyTorch file with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import os
import time

from .._backend import IMPLS
from ..pretrained import describe_networks, detect_kind, load_networks
from ..train.checkpoint import export_generator, save_networks
from . import _arguments

HELP = "import an NVlabs StyleGAN1 .pkl or a rosinality checkpoint (or --list what it holds)"
EXPORT_NAME = "generator.safetensors"
CHECKPOINT_NAME = "checkpoint.safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the network file (.pkl, .model, .pt, ...)")
    parser.add_argument("--outdir", help="where to write generator.safetensors and the checkpoint")
    parser.add_argument(
        "--list", action="store_true", help="print the architecture found; write nothing"
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="rosinality files: the trained resolution (they do not store it; default: from "
        "the file name, e.g. ...-256px-... or train_step-6)",
    )
    parser.add_argument(
        "--impl", default="auto", choices=IMPLS, help="kernel backend of the loaded models"
    )


def run(args: argparse.Namespace) -> int:
    if args.list:
        if args.outdir is not None:
            raise ValueError("--list writes nothing; drop --outdir")
        print(describe_networks(args.file, resolution=args.resolution))
        return 0
    if args.outdir is None:
        raise ValueError("--outdir: required (or --list to only print the architecture)")
    kind = detect_kind(args.file)
    started = time.perf_counter()
    networks = load_networks(args.file, impl=args.impl, resolution=args.resolution)
    G_ema = networks["G_ema"] if networks["G_ema"] is not None else networks["G"]
    if G_ema is None:
        raise ValueError(f"{args.file}: holds no generator")
    G = networks["G"] if networks["G"] is not None else G_ema
    outdir = _arguments.make_outdir(args.outdir)
    export = export_generator(outdir / EXPORT_NAME, G_ema)
    source = {"file": os.path.basename(args.file), "kind": kind}
    checkpoint = save_networks(
        outdir / CHECKPOINT_NAME, {**networks, "G": G, "G_ema": G_ema}, source
    )
    seconds = time.perf_counter() - started
    print(f"{kind} {args.file}: G_ema {G_ema.config.resolution}² ({seconds:.1f} s)")
    if networks["D"] is None:
        print("  no discriminator in the file: train --init starts D from random weights")
    print(f"wrote {export}")
    print(f"wrote {checkpoint}")
    return 0
