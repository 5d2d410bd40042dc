"""``stylegan-fast project``: finds the latent (and noise maps) of an image with
:func:`stylegan_fast.tools.project.project` (Karras et al. 2020, Appendix D) and writes, to
``--outdir``: ``target.png`` (the target as the network sees it), ``proj.png`` (the
projection), ``projected_w.npz``, ``projected_noise.npz``, ``log.jsonl`` (one line per step:
step, loss, distance, regularization, PSNR in dB, lr, latent noise; a last ``final`` line for
the written projection) and, with ``--video``, ``proj.gif`` (target | projection as it
converges; also ``proj.mp4`` when ``imageio-ffmpeg`` is installed).

``stylegan-fast generate --projected-w DIR/projected_w.npz --projected-noise
DIR/projected_noise.npz`` writes the same ``proj.png`` again, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from ..tools import _common
from ..tools.project import (
    SPACES,
    has_tracked_w_avg,
    load_target,
    progress_frame,
    project,
    save_projection,
    target_png,
)
from . import _arguments

HELP = "find the latent w (and noise) that makes a network draw a given image"
LOG_FILE = "log.jsonl"
VIDEO_FRAMES = 50  # at most this many frames (plus the final one) in proj.gif / proj.mp4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _arguments.add_network_arguments(parser)
    parser.add_argument("--target", required=True, metavar="IMG", help="the image to project")
    parser.add_argument("--steps", type=int, default=1000, help="optimisation steps (1000)")
    parser.add_argument(
        "--space",
        default="w",
        choices=SPACES,
        help="w: one latent for every layer (default); w+: one per layer",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (0)")
    parser.add_argument(
        "--loss",
        default="mse",
        choices=("mse", "lpips"),
        help="mse: pixel MSE (default); lpips: the --distance-net network",
    )
    parser.add_argument(
        "--distance-net",
        default=None,
        metavar="FILE",
        help="--loss lpips: TorchScript perceptual distance d(img0, img1) -> [N] on [-1, 1] "
        "images (the contract of the PPL metric's --distance-net)",
    )
    parser.add_argument(
        "--noise-reg",
        type=float,
        default=1e5,
        help="weight of the noise-map regularisation (1e5, the paper's)",
    )
    parser.add_argument(
        "--video",
        action="store_true",
        help="also write proj.gif (and proj.mp4 with imageio-ffmpeg)",
    )


def _check_arguments(args: argparse.Namespace) -> None:
    _arguments.positive("steps", args.steps)
    if not 0 <= args.seed <= _arguments.MAX_SEED:
        raise ValueError(f"--seed: must be in [0, {_arguments.MAX_SEED}], got {args.seed}")
    if not args.noise_reg >= 0 or args.noise_reg == float("inf"):
        raise ValueError(f"--noise-reg: must be finite and >= 0, got {args.noise_reg}")
    if args.loss == "lpips" and args.distance_net is None:
        raise ValueError("--distance-net: --loss lpips needs a perceptual distance file")
    if args.loss == "mse" and args.distance_net is not None:
        raise ValueError("--distance-net: only used with --loss lpips (the loss is mse)")


class _Recorder:
    """The per-step callback: appends each step to ``log.jsonl`` (flushed, so a stopped run
    keeps its log) and keeps up to :data:`VIDEO_FRAMES` frames for the video."""

    def __init__(self, stream, target: torch.Tensor, steps: int, video: bool):
        self.stream, self.target, self.video = stream, target, video
        self.every = max(1, -(-steps // VIDEO_FRAMES))
        self.frames = []

    def __call__(self, state) -> None:
        self.write(state.record())
        if self.video and state.step % self.every == 0:
            self.frames.append(progress_frame(self.target, state.image))

    def write(self, record: dict) -> None:
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


def _write_video(outdir, frames) -> list[str]:
    """``proj.gif`` always; ``proj.mp4`` when imageio-ffmpeg is installed. Returns notes."""
    gif = outdir / "proj.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=80, loop=0)
    notes = [f"wrote {gif} ({len(frames)} frames)"]
    try:
        import imageio_ffmpeg
    except ImportError:
        notes.append("no proj.mp4: imageio-ffmpeg is not installed (pip install imageio-ffmpeg)")
        return notes
    import numpy as np

    rgb = [np.asarray(frame.convert("RGB")) for frame in frames]
    height, width = rgb[0].shape[:2]
    # H.264 in yuv420p needs even sides; pad by one black row/column when odd.
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    rgb = [np.ascontiguousarray(np.pad(frame, pad)) for frame in rgb]
    mp4 = outdir / "proj.mp4"
    writer = imageio_ffmpeg.write_frames(
        str(mp4), (width + width % 2, height + height % 2), fps=12, macro_block_size=1
    )
    writer.send(None)  # starts ffmpeg
    for frame in rgb:
        writer.send(frame)
    writer.close()
    notes.append(f"wrote {mp4}")
    return notes


def run(args: argparse.Namespace) -> int:
    _check_arguments(args)
    device = _arguments.resolve_device(args.device)
    distance = None
    if args.loss == "lpips":
        distance = _arguments.load_distance_net(args.distance_net, device)
    G = _arguments.load_network(args)
    target, notices = load_target(args.target, G.resolution, G.img_channels)
    if notices:
        print(f"project: target {args.target}: {'; '.join(notices)}", file=sys.stderr)
    if not has_tracked_w_avg(G):
        print(
            "project: the network's w_avg is all zeros (never trained); starting from the mean "
            "of the sampled w's",
            file=sys.stderr,
        )
    outdir = _arguments.make_outdir(args.outdir)
    _common.save_png(target_png(target), outdir / "target.png")
    with open(outdir / LOG_FILE, "w", encoding="utf-8") as stream:
        recorder = _Recorder(stream, target, args.steps, args.video)
        result = project(
            G,
            target,
            steps=args.steps,
            space=args.space,
            noise_reg=args.noise_reg,
            distance=distance,
            generator=torch.Generator().manual_seed(args.seed),
            callback=recorder,
            progress=True,
        )
        recorder.write(
            {"step": args.steps, "final": True, "loss": result.loss, "psnr": result.psnr}
        )
    _common.save_png(target_png(result.image), outdir / "proj.png")
    save_projection(outdir, result)
    print(
        f"projected {args.target} in {args.steps} steps ({args.space}): PSNR {result.psnr:.2f} dB"
    )
    print(
        f"wrote target.png, proj.png, projected_w.npz, projected_noise.npz, {LOG_FILE} to {outdir}"
    )
    if args.video:
        recorder.frames.append(progress_frame(target, result.image))
        for note in _write_video(outdir, recorder.frames):
            print(note)
    return 0
