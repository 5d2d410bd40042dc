"""The stochastic-variation figure (Karras et al. 2019, Fig. 4), behind ``stylegan-fast
noise``: one latent, several noise draws, and the per-pixel standard deviation over many draws.

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

import numpy as np
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


def noise_figure(images: torch.Tensor, std: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """:func:`noise_variation`'s output as pixels: ``(figure uint8 [H, (S + 1) * W, C],
    std_map uint8 [H, W, C])``, the figure being the ``S`` samples in a row followed by the
    standard-deviation map, scaled so that its largest value is white."""
    peak = float(std.max())
    shown = std / peak if peak > 0 else std
    shown = (shown * 2 - 1).expand(images.shape[1], -1, -1)  # [0, 1] -> [-1, 1], as images
    pixels = _common.to_pixels(torch.cat([images, shown[None]]))
    return _common.compose([list(pixels)]), pixels[-1]
