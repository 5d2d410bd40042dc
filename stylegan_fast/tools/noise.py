"""``stylegan-fast noise``: the stochastic-variation figure (Karras et al. 2019, Fig. 4): one
latent, several noise draws, and the per-pixel standard deviation over many draws.

The figure (``noise.png``) is a row of ``samples`` images that share the seed's latent and
differ only in their noise, followed by the standard-deviation map (``noise-std.png`` on its
own): for each pixel, the standard deviation over ``draws`` noise draws, averaged over the
colour channels, shown scaled so that the largest value is white. Where it is bright, the
noise decides the image (hair, skin texture); where it is black, the latent alone does.

Noise draw k of seed s is drawn on the CPU, layer by layer, from one generator seeded with
``s + 2**33`` (a stream apart from the seed's latent and from ``generate``'s noise), so the
draws do not depend on the batch size or the device.
"""

from __future__ import annotations

import argparse

import torch

from . import _common
from .generate import seed_ws

NOISE_MODES = ("random", "none")


def noise_draws(G, seed: int, count: int) -> list[list[torch.Tensor]]:
    """``count`` noise draws, each one ``[1, 1, R, R]`` image per w layer (see the module
    docstring)."""
    rng = torch.Generator().manual_seed(int(seed) + 2**33)
    sides = [2 ** (i // 2 + 2) for i in range(G.num_ws)]
    return [[torch.randn([1, 1, r, r], generator=rng) for r in sides] for _ in range(count)]


def noise_variation(
    G,
    seed: int,
    samples: int = 4,
    draws: int = 100,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "random",
    batch_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [samples, C, R, R], std [R, R])`` on the CPU: the first ``samples`` of
    ``max(samples, draws)`` images of seed's w under independent noise draws, and the
    per-pixel standard deviation (population, over all draws; mean over channels).
    ``noise_mode="none"`` renders every draw without noise (a control: the map is zero)."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    if samples < 1 or draws < 2:
        raise ValueError(f"need samples >= 1 and draws >= 2, got {samples} and {draws}")
    if not getattr(G.synthesis, "use_noise", True):
        raise ValueError("this generator has no noise inputs (use_noise=False)")
    total = max(samples, draws)
    w = seed_ws(G, [seed], truncation_psi, truncation_cutoff, class_idx)
    device = w.device
    all_noise = noise_draws(G, seed, total) if noise_mode == "random" else None
    images = []
    for start in range(0, total, batch_size):
        count = min(batch_size, total - start)
        noise = None
        if all_noise is not None:
            chunk = all_noise[start : start + count]
            noise = [torch.cat(layer).to(device) for layer in zip(*chunk)]
        with torch.no_grad():
            images.append(G.synthesis(w.expand(count, -1, -1), noise_mode, noise).cpu())
    images = torch.cat(images).double()
    std = images[:draws].std(dim=0, correction=0).mean(dim=0)
    return images[:samples].float(), std.float()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _common.add_network_arguments(parser)
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
    _common.add_truncation_arguments(parser)
    _common.add_class_argument(parser)
    parser.add_argument(
        "--noise-mode",
        default="random",
        choices=NOISE_MODES,
        help="random (default); none renders without noise, a control whose map is black",
    )
    parser.add_argument("--batch", type=int, default=8, help="images per generator call (8)")


def run(args: argparse.Namespace) -> int:
    seed = args.seed
    if not 0 <= seed <= _common.MAX_SEED:
        raise ValueError(f"--seed: must be in [0, {_common.MAX_SEED}], got {seed}")
    _common.positive("samples", args.samples)
    _common.positive("draws", args.draws, 2)
    _common.positive("batch", args.batch)
    G = _common.load_network(args)
    _common.check_truncation(G, args.trunc, args.trunc_cutoff)
    _common.labels(G, args.class_idx, 1)
    outdir = _common.make_outdir(args.outdir)
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
    peak = float(std.max())
    shown = std / peak if peak > 0 else std
    shown = (shown * 2 - 1).expand(images.shape[1], -1, -1)  # [0, 1] -> [-1, 1], as images
    pixels = _common.to_pixels(torch.cat([images, shown[None]]))
    _common.save_png(pixels[-1], outdir / "noise-std.png")
    path = _common.save_png(_common.compose([list(pixels)]), outdir / "noise.png")
    print(
        f"wrote {path}: {args.samples} noise samples of seed {seed} and the std map over "
        f"{args.draws} draws (max std {peak:.4g}, mean {float(std.mean()):.4g}, in image units "
        "where [-1, 1] is black to white; the map is scaled to its max)"
    )
    return 0
