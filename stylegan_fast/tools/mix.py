"""The style-mixing figure (Karras et al. 2019, Fig. 3), behind ``stylegan-fast mix``.

Layout as in the paper's figure: the top row holds the column images (source B), the left
column the row images (source A). Cell (i, j) is row image i with the chosen subset of its
styles replaced by column image j's: ``w = w_A[i]; w[styles] = w_B[j][styles]``. Copying the
coarse styles from B brings B's pose and face shape while A keeps its colours; the fine
styles bring mostly B's colour scheme.

Style bands by resolution, as the paper defines them: coarse = the layers at 4²-8², middle
= 16²-32², fine = 64² and up (layers ``2k, 2k + 1`` drive resolution ``4 * 2**k``). A model
below 64² has no fine layers; there the top resolution's two layers are taken as "fine"
(out of middle or coarse), so a 32² model (8 layers) maps coarse -> 0-3 (4², 8²),
middle -> 4-5 (16²), fine -> 6-7 (32²). A band left empty (e.g. middle at 16²) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from . import _common
from .generate import seed_ws, synthesize

BANDS = ("coarse", "middle", "fine", "all")


def style_bands(num_ws: int) -> dict[str, list[int]]:
    """The w layers of each band for a generator with ``num_ws`` layers (see the module
    docstring): ``{"coarse": [...], "middle": [...], "fine": [...], "all": [...]}``."""
    if num_ws < 2 or num_ws % 2:
        raise ValueError(f"num_ws must be an even number >= 2, got {num_ws}")
    resolution = {layer: 4 * 2 ** (layer // 2) for layer in range(num_ws)}
    top = resolution[num_ws - 1]
    bands = {
        "coarse": [i for i, r in resolution.items() if r <= 8],
        "middle": [i for i, r in resolution.items() if 16 <= r <= 32],
        "fine": [i for i, r in resolution.items() if r >= 64],
    }
    if not bands["fine"]:
        bands["fine"] = [i for i, r in resolution.items() if r == top]
        bands["coarse"] = [i for i in bands["coarse"] if resolution[i] != top]
        bands["middle"] = [i for i in bands["middle"] if resolution[i] != top]
    bands["all"] = list(range(num_ws))
    return bands


def mix_styles(w_rows: torch.Tensor, w_cols: torch.Tensor, styles: Sequence[int]) -> torch.Tensor:
    """``[R, C, num_ws, w_dim]``: entry (i, j) is ``w_rows[i]`` with layers ``styles`` taken
    from ``w_cols[j]``. ``w_rows: [R, num_ws, w_dim]``, ``w_cols: [C, num_ws, w_dim]``."""
    rows, cols = w_rows.shape[0], w_cols.shape[0]
    mixed = w_rows.unsqueeze(1).repeat(1, cols, 1, 1)
    index = torch.as_tensor(list(styles), dtype=torch.long, device=w_rows.device)
    mixed[:, :, index] = w_cols[:, index].unsqueeze(0).expand(rows, -1, -1, -1)
    return mixed


def style_mixing(
    G,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    styles: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The figure's images: ``(row_images [R, C_img, H, W], col_images [C, ...], cells [R, C,
    C_img, H, W])``, on the CPU. With random noise, every image of row i uses row seed i's
    noise (the destination's)."""
    w_rows = seed_ws(G, row_seeds, truncation_psi, truncation_cutoff, class_idx)
    w_cols = seed_ws(G, col_seeds, truncation_psi, truncation_cutoff, class_idx)
    row_images = synthesize(G, w_rows, noise_mode, row_seeds, batch_size)
    col_images = synthesize(G, w_cols, noise_mode, col_seeds, batch_size)
    mixed = mix_styles(w_rows, w_cols, styles).flatten(0, 1)
    noise_seeds = [s for s in row_seeds for _ in col_seeds]
    cells = synthesize(G, mixed, noise_mode, noise_seeds, batch_size)
    return row_images, col_images, cells.unflatten(0, (len(row_seeds), len(col_seeds)))


def figure_pixels(
    row_images: torch.Tensor, col_images: torch.Tensor, cells: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`style_mixing`'s images as ``uint8`` pixels: ``([R, H, W, C], [K, H, W, C],
    [R, K, H, W, C])``."""
    row_px, col_px = _common.to_pixels(row_images), _common.to_pixels(col_images)
    cell_px = _common.to_pixels(cells.flatten(0, 1)).reshape(*cells.shape[:2], *row_px.shape[1:])
    return row_px, col_px, cell_px


def figure_layout(row_px: np.ndarray, col_px: np.ndarray, cell_px: np.ndarray) -> np.ndarray:
    """The figure as one ``uint8 [(R + 1) * H, (K + 1) * W, C]`` image: column images along
    the top, row images down the left, cell (i, j) at row i + 1, column j + 1."""
    figure = [[None, *col_px]] + [[row_px[i], *cell_px[i]] for i in range(len(row_px))]
    return _common.compose(figure)


def stylemix_figure(
    G,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    bands: Sequence[str] = ("coarse", "middle", "fine"),
    truncation_psi: float = 1.0,
    class_idx: int | None = None,
) -> np.ndarray:
    """The paper's Fig. 3 with one block of rows per style band: the column images along the
    top, then for each band the row images and their mixes with that band copied from the
    columns (all of class ``class_idx`` for a conditional ``G``).
    ``uint8 [(1 + len(bands) * R) * H, (K + 1) * W, C]``."""
    col_px = None
    row_blocks, cell_blocks = [], []
    for band in bands:
        styles = style_bands(G.num_ws)[band]
        row_images, col_images, cells = style_mixing(
            G, row_seeds, col_seeds, styles, truncation_psi, class_idx=class_idx
        )
        row_px, col_px, cell_px = figure_pixels(row_images, col_images, cells)
        row_blocks.append(row_px)
        cell_blocks.append(cell_px)
    return figure_layout(np.concatenate(row_blocks), col_px, np.concatenate(cell_blocks))
