"""The figures ``stylegan-fast train`` draws with the trained generator at the end of a run;
here, beside the tools that draw each of them, so that the train command uses the same code
as ``generate``, ``mix`` and ``interpolate`` and ``stylegan_fast.train`` needs no tools."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models import OFFICIAL_TRUNCATION_PSI
from ..train.images import save_image_grid
from . import _common
from .interpolate import interpolation, strip
from .mix import stylemix_figure

SAMPLE_SEEDS = 32  # the sample grid: 8 x 4 images from seeds 0..31
SAMPLE_COLS = 8
MAX_CLASS_ROWS = 32  # a conditional G's sample grid: one row per class, up to this many


def write_figures(G: torch.nn.Module, outdir: str | Path) -> list[Path]:
    """The end-of-run figures of the trained (EMA) generator ``G``, written under
    ``outdir/figures`` at truncation 0.7 with constant noise. Returns their paths:

    - ``samples.png``: seeds 0..31, 8 x 4; for a conditional ``G``, seeds 0..7 in the
      columns and one row per class (the first 32 classes);
    - ``stylemix.png``: the paper's Fig. 3 for column seeds 32..36 and row seeds 37..39, one
      block of rows each for the coarse, middle and fine styles copied from the columns;
    - ``interpolate.png``: a lerp in W from seed 40 through 41 to 42, 15 frames in a row.

    The style-mixing and interpolation figures of a conditional ``G`` are of class 0.
    """
    figures = Path(outdir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    psi = OFFICIAL_TRUNCATION_PSI
    was_training = G.training
    G.eval()
    try:
        device = next(G.parameters()).device
        class_idx = 0 if G.c_dim else None
        if G.c_dim:
            rows = min(G.c_dim, MAX_CLASS_ROWS)
            z = _common.seeds_to_z(range(SAMPLE_COLS), G.z_dim).repeat(rows, 1)
            c = torch.cat([_common.labels(G, row, SAMPLE_COLS) for row in range(rows)])
        else:
            rows = SAMPLE_SEEDS // SAMPLE_COLS
            z, c = _common.seeds_to_z(range(SAMPLE_SEEDS), G.z_dim), None
        with torch.no_grad():
            c = c.to(device) if c is not None else None
            images = G(z.to(device), c, truncation_psi=psi, noise_mode="const").float().cpu()
        samples = figures / "samples.png"
        save_image_grid(images, samples, (SAMPLE_COLS, rows))
        stylemix = _common.save_png(
            stylemix_figure(
                G, range(37, 40), range(32, 37), truncation_psi=psi, class_idx=class_idx
            ),
            figures / "stylemix.png",
        )
        frames = interpolation(G, [40, 41, 42], frames=8, truncation_psi=psi, class_idx=class_idx)
        strip_path = _common.save_png(strip(_common.to_pixels(frames)), figures / "interpolate.png")
    finally:
        G.train(was_training)
    return [samples, stylemix, strip_path]
