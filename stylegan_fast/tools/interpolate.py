"""``stylegan-fast interpolate``: frames along the path through several seeds' latents — a
lerp of the (truncated) w's in W, or a slerp of the z's in Z (then mapped) — written as one
strip PNG and optionally an animated GIF.

Each segment between consecutive seeds has ``frames`` frames, its two ends included (shared
with the next segment), so the path has ``(len(seeds) - 1) * (frames - 1) + 1`` frames and
its first and last frames are the seeds' own images. Truncation is affine in w, so lerping
truncated w's equals truncating the lerped ones.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import numpy as np
import torch

from . import _common
from .generate import seed_ws, synthesize

SPACES = ("w", "z")


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of ``a, b: [..., D]`` at scalar ``t``: ``(sin((1 - t) θ) a +
    sin(t θ) b) / sin θ`` with θ the angle between them (a lerp when they are parallel).
    Exact at the ends: ``t = 0`` returns ``a``, ``t = 1`` returns ``b`` bit for bit."""
    a64, b64 = a.double(), b.double()
    cos = (a64 * b64).sum(-1, keepdim=True) / (
        a64.norm(dim=-1, keepdim=True) * b64.norm(dim=-1, keepdim=True)
    )
    theta = torch.acos(cos.clamp(-1.0, 1.0))
    sin = torch.sin(theta)
    if bool((sin < 1e-6).any()):
        return torch.lerp(a, b, t)
    wa = (torch.sin((1.0 - t) * theta) / sin).to(a.dtype)
    wb = (torch.sin(t * theta) / sin).to(a.dtype)
    return wa * a + wb * b


def path_positions(num_seeds: int, frames: int) -> list[tuple[int, float]]:
    """``(segment, t)`` of every frame: ``frames`` per segment, shared ends counted once."""
    positions = []
    for segment in range(num_seeds - 1):
        first = 0 if segment == 0 else 1
        positions += [(segment, k / (frames - 1)) for k in range(first, frames)]
    return positions


def interpolation(
    G,
    seeds: Sequence[int],
    frames: int = 8,
    space: str = "w",
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
) -> torch.Tensor:
    """The frames ``[F, C, R, R]`` (on the CPU) of the path through ``seeds`` (two or more).
    With ``noise_mode="random"`` every frame uses the first seed's noise, so only the
    latent moves."""
    if len(seeds) < 2:
        raise ValueError(f"--seeds: interpolation needs two or more seeds, got {len(seeds)}")
    if frames < 2:
        raise ValueError(f"--frames: must be >= 2 (both ends of a segment), got {frames}")
    if space not in SPACES:
        raise ValueError(f"--space: must be one of {SPACES}, got {space!r}")
    positions = path_positions(len(seeds), frames)
    if space == "w":
        ends = seed_ws(G, seeds, truncation_psi, truncation_cutoff, class_idx)
        ws = torch.stack([torch.lerp(ends[s], ends[s + 1], t) for s, t in positions])
    else:
        z_ends = _common.seeds_to_z(seeds, G.z_dim)
        z = torch.stack([slerp(z_ends[s], z_ends[s + 1], t) for s, t in positions])
        device = G.w_avg.device
        c = _common.labels(G, class_idx, len(z))
        with torch.no_grad():
            ws = G.mapping(
                z.to(device),
                None if c is None else c.to(device),
                truncation_psi,
                truncation_cutoff,
            )
    return synthesize(G, ws, noise_mode, [seeds[0]] * len(ws), batch_size)


def strip(pixels: np.ndarray, frames_per_row: int | None = None) -> np.ndarray:
    """Frames ``uint8 [F, H, W, C]`` side by side, ``frames_per_row`` to a row (default all):
    ``uint8 [rows * H, min(F, frames_per_row) * W, C]``."""
    per_row = len(pixels) if frames_per_row is None else frames_per_row
    return _common.compose([list(pixels[i : i + per_row]) for i in range(0, len(pixels), per_row)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.add_network_arguments(parser)
    parser.add_argument("--seeds", required=True, help="two or more seeds, e.g. 0,1 or 0-3")
    parser.add_argument(
        "--space", default="w", choices=SPACES, help="w: lerp in W (default); z: slerp in Z"
    )
    parser.add_argument(
        "--frames", type=int, default=8, help="frames per segment, both ends included (8)"
    )
    _common.add_truncation_arguments(parser)
    parser.add_argument("--noise-mode", default="const", choices=("const", "random", "none"))
    _common.add_class_argument(parser)
    parser.add_argument("--gif", action="store_true", help="also write interpolate.gif")
    parser.add_argument("--fps", type=float, default=12.0, help="GIF frames per second (12)")
    parser.add_argument("--batch", type=int, default=8, help="images per generator call (8)")


def run(args: argparse.Namespace) -> int:
    seeds = _common.parse_seeds(args.seeds)
    _common.positive("batch", args.batch)
    _common.positive("frames", args.frames, 2)
    if len(seeds) < 2:
        raise ValueError(f"--seeds: interpolation needs two or more seeds, got {len(seeds)}")
    if not (math.isfinite(args.fps) and args.fps > 0):
        raise ValueError(f"--fps: must be a positive number, got {args.fps}")
    G = _common.load_network(args)
    _common.check_truncation(G, args.trunc, args.trunc_cutoff)
    _common.labels(G, args.class_idx, 1)
    outdir = _common.make_outdir(args.outdir)
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
        frames = [_common.to_pil(p) for p in pixels]
        gif = outdir / "interpolate.gif"
        frames[0].save(
            gif,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=round(1000 / args.fps),
            loop=0,
        )
        print(f"wrote {gif}")
    return 0
