"""What every generation tool shares: seed lists, seed -> latent, loading the network onto a
device, labels, explicit per-seed noise, and writing images/figures as PNG."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .._backend import IMPLS
from ..train.images import float_to_uint8

MAX_SEED = 2**32 - 1


def parse_range(text: str, name: str = "seeds", minimum: int = 0) -> list[int]:
    """``"0-9"`` -> ``[0, ..., 9]``; ``"0,3,5-7"`` -> ``[0, 3, 5, 6, 7]`` (order kept,
    duplicates kept). Raises ValueError naming ``name`` for anything else."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--{name}: expected a list like 0-9 or 0,3,5-7, got {text!r}")
    values = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first = int(lo)
            last = int(hi) if sep else first
        except ValueError:
            raise ValueError(
                f"--{name}: {part!r} is not an integer or a range A-B (expected e.g. 0-9 or "
                f"0,3,5-7; got {text!r})"
            ) from None
        if first < minimum or last < minimum:
            raise ValueError(f"--{name}: values must be >= {minimum}, got {part!r}")
        if last < first:
            raise ValueError(f"--{name}: range {part!r} ends before it starts")
        values.extend(range(first, last + 1))
    return values


def parse_seeds(text: str, name: str = "seeds") -> list[int]:
    """:func:`parse_range` for seeds, which must lie in ``[0, 2**32 - 1]``."""
    seeds = parse_range(text, name)
    if max(seeds) > MAX_SEED:
        raise ValueError(f"--{name}: seeds must be <= {MAX_SEED}, got {max(seeds)}")
    return seeds


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of ``seed``: ``z [z_dim]`` float32, standard normal, drawn on the CPU from
    ``torch.Generator().manual_seed(seed)`` (so one seed gives one z on every device and in
    every batch)."""
    rng = torch.Generator().manual_seed(int(seed))
    return torch.randn([z_dim], generator=rng, dtype=torch.float32)


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """``[len(seeds), z_dim]``: :func:`seed_to_z` of each seed."""
    return torch.stack([seed_to_z(s, z_dim) for s in seeds])


def noise_for_seed(G, seed: int, batch: int = 1) -> list[torch.Tensor] | None:
    """Per-layer noise images ``[batch, 1, R, R]`` (one entry per w layer) drawn on the CPU
    from ``seed`` (a generator separate from the latent's: it is seeded with ``seed`` and
    offset by 2**32), or None when ``G`` has no noise inputs. Passing these as
    ``synthesis(w, noise=...)`` makes ``noise_mode="random"`` reproducible per seed,
    whatever the batch or device."""
    if not getattr(G.synthesis, "use_noise", True):
        return None
    rng = torch.Generator().manual_seed(int(seed) + 2**32)
    return [
        torch.randn([batch, 1, 2 ** (i // 2 + 2), 2 ** (i // 2 + 2)], generator=rng)
        for i in range(G.num_ws)
    ]


def labels(G, class_idx: int | None, batch: int) -> torch.Tensor | None:
    """One-hot ``[batch, c_dim]`` labels of ``class_idx`` for a conditional ``G`` (None for an
    unconditional one); ValueError when the class is missing, out of range or not wanted."""
    c_dim = int(G.c_dim)
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError("--class: this generator is unconditional (c_dim=0); leave it out")
        return None
    if class_idx is None:
        raise ValueError(f"--class: this generator is conditional; give a class in [0, {c_dim})")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"--class: must be in [0, {c_dim}), got {class_idx}")
    c = torch.zeros([batch, c_dim])
    c[:, class_idx] = 1
    return c


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(text: str) -> torch.device:
    """``--device`` as a torch.device; ValueError for a malformed one or CUDA without a GPU."""
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"--device: not a device name: {text!r} (e.g. cpu, cuda, cuda:1)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device: CUDA was asked for but no CUDA GPU is available; use cpu")
    return device


def add_network_arguments(parser: argparse.ArgumentParser, outdir: bool = True) -> None:
    """``--network``, ``--device``, ``--impl`` (and ``--outdir``): every tool takes these."""
    parser.add_argument(
        "--network",
        required=True,
        metavar="FILE",
        help="a training checkpoint (its G_ema is used) or a generator export (.safetensors)",
    )
    if outdir:
        parser.add_argument("--outdir", required=True, help="directory for the output PNGs")
    parser.add_argument(
        "--device",
        default=default_device(),
        help="where to run: cpu, cuda, cuda:N (default: cuda when available, else cpu)",
    )
    parser.add_argument(
        "--impl", default="auto", choices=IMPLS, help="kernel backend for every op (auto)"
    )


def add_truncation_arguments(parser: argparse.ArgumentParser, psi: float = 0.7) -> None:
    parser.add_argument(
        "--trunc",
        type=float,
        default=psi,
        metavar="PSI",
        help=f"truncation psi in [0, 1] (1: none; default {psi})",
    )
    parser.add_argument(
        "--trunc-cutoff",
        type=int,
        default=None,
        metavar="LAYERS",
        help="truncate only the first LAYERS w layers (default: all)",
    )


def add_class_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--class",
        dest="class_idx",
        type=int,
        default=None,
        metavar="INDEX",
        help="class label for a conditional generator",
    )


def load_network(args: argparse.Namespace):
    """The generator of ``args.network`` on ``args.device`` with ``args.impl``, in eval mode.
    A missing or corrupt file raises CheckpointError (a ValueError) naming it."""
    from ..train.checkpoint import load_generator

    device = resolve_device(args.device)
    return load_generator(args.network, impl=args.impl, device=device)


def check_truncation(G, psi: float, cutoff: int | None) -> None:
    """ValueError naming ``--trunc``/``--trunc-cutoff`` for values the mapping would refuse."""
    if not 0 <= psi <= 1:
        raise ValueError(f"--trunc: must be in [0, 1], got {psi}")
    if cutoff is not None and not 0 <= cutoff <= G.num_ws:
        raise ValueError(f"--trunc-cutoff: must be in [0, num_ws={G.num_ws}], got {cutoff}")


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] (C = 1 or 3) -> ``uint8 [N, H, W, C]``."""
    return float_to_uint8(images.detach().cpu()).permute(0, 2, 3, 1).numpy()


def to_pil(pixels: np.ndarray) -> Image.Image:
    """``uint8 [H, W, C]`` (C = 1 or 3) -> a Pillow image (mode L or RGB)."""
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def save_png(pixels: np.ndarray, path: str | os.PathLike) -> Path:
    path = Path(path)
    to_pil(pixels).save(path, format="PNG")
    return path


def compose(cells: Sequence[Sequence[np.ndarray | None]], background: int = 255) -> np.ndarray:
    """Tiles rows of ``uint8 [H, W, C]`` cells (None: a blank cell) of one size into one
    ``uint8 [rows * H, cols * W, C]`` array; rows may be shorter than the longest."""
    filled = [cell for row in cells for cell in row if cell is not None]
    if not filled:
        raise ValueError("compose: no images")
    h, w, c = filled[0].shape
    cols = max(len(row) for row in cells)
    canvas = np.full([len(cells) * h, cols * w, c], background, dtype=np.uint8)
    for r, row in enumerate(cells):
        for k, cell in enumerate(row):
            if cell is not None:
                canvas[r * h : (r + 1) * h, k * w : (k + 1) * w] = cell
    return canvas


def make_outdir(path: str | os.PathLike) -> Path:
    outdir = Path(path)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"--outdir: {outdir} exists and is not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    return outdir


def positive(name: str, value: int, minimum: int = 1) -> int:
    if value < minimum:
        raise ValueError(f"--{name}: must be >= {minimum}, got {value}")
    return value
