"""stylegan-fast mix: the figure's layout, its cells against explicit syntheses of mixed w,
and the style bands."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_fast import cli
from stylegan_fast.commands.mix import parse_styles
from stylegan_fast.tools import seed_to_z, style_bands, style_mixing


def test_style_bands_by_resolution():
    # 1024²: 18 layers; coarse 4²-8², middle 16²-32², fine 64²-1024² as in the paper.
    bands = style_bands(18)
    assert bands["coarse"] == [0, 1, 2, 3]
    assert bands["middle"] == [4, 5, 6, 7]
    assert bands["fine"] == list(range(8, 18))
    assert bands["all"] == list(range(18))
    assert style_bands(12)["fine"] == list(range(8, 12))  # 128²
    # Below 64² the top resolution's layers are "fine".
    assert style_bands(8) == {
        "coarse": [0, 1, 2, 3],
        "middle": [4, 5],
        "fine": [6, 7],
        "all": list(range(8)),
    }
    assert style_bands(6) == {
        "coarse": [0, 1, 2, 3],
        "middle": [],
        "fine": [4, 5],
        "all": list(range(6)),
    }
    with pytest.raises(ValueError, match="16² generator has no middle layers"):
        parse_styles("middle", 6)
    assert parse_styles("1,0-2", 8) == [0, 1, 2]
    with pytest.raises(ValueError, match=r"--styles: layers must be in \[0, 7\]"):
        parse_styles("8", 8)
    with pytest.raises(ValueError, match="--styles: expected one of coarse"):
        parse_styles("coarsest", 8)


def _explicit(G, row_seed, col_seed, layers, psi=1.0):
    w_row = G.mapping(seed_to_z(row_seed, G.z_dim)[None], truncation_psi=psi)
    w_col = G.mapping(seed_to_z(col_seed, G.z_dim)[None], truncation_psi=psi)
    w = torch.cat(
        [w_col[:, i : i + 1] if i in layers else w_row[:, i : i + 1] for i in range(G.num_ws)],
        dim=1,
    )
    return G.synthesis(w, "const")


def test_cells_are_row_images_with_the_columns_styles(G):
    rows, cols = [0, 1], [2, 3, 4]
    row_images, col_images, cells = style_mixing(G, rows, cols, [0, 1, 2, 3], 0.8)
    assert cells.shape == (2, 3, 3, 32, 32)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            expected = _explicit(G, r, c, {0, 1, 2, 3}, 0.8)
            # Batched vs single-image float arithmetic: ~1e-5 apart.
            torch.testing.assert_close(cells[i, j], expected[0], rtol=1e-4, atol=1e-4)
            # The mix is neither source.
            assert (cells[i, j] - row_images[i]).abs().max() > 0.05
            assert (cells[i, j] - col_images[j]).abs().max() > 0.05
    # Copying every style reproduces the column image.
    _, col_images, cells = style_mixing(G, [0], [2], list(range(8)))
    torch.testing.assert_close(cells[0, 0], col_images[0], rtol=1e-4, atol=1e-4)


def test_mix_figure_layout(network, tmp_path):
    out = tmp_path / "mix"
    argv = [
        "mix",
        "--network",
        str(network),
        "--rows",
        "0-1",
        "--cols",
        "2-4",
        "--outdir",
        str(out),
        "--styles",
        "fine",
        "--save-cells",
        "--device",
        "cpu",
        "--trunc",
        "1",
    ]
    assert cli.main(argv) == 0
    figure = np.asarray(Image.open(out / "stylemix.png"))
    assert figure.shape == (3 * 32, 4 * 32, 3)
    assert np.all(figure[:32, :32] == 255)  # the empty corner
    cell = lambda r, c: figure[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]  # noqa: E731
    single = lambda name: np.asarray(Image.open(out / name))  # noqa: E731
    assert np.array_equal(cell(0, 1), single("seed0002.png"))  # top row: the columns
    assert np.array_equal(cell(2, 0), single("seed0001.png"))  # left column: the rows
    assert np.array_equal(cell(2, 3), single("mix-row0001-col0004.png"))
    expected = _explicit(load(network), 1, 4, {6, 7})  # fine = 32² on this 32² model
    pixels = ((expected[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(cell(2, 3).astype(float) - pixels).max() <= 1
    assert len(list(out.glob("*.png"))) == 1 + 2 + 3 + 6


def test_banded_figure_stacks_one_block_of_rows_per_band(G):
    from stylegan_fast.tools import _common
    from stylegan_fast.tools.mix import stylemix_figure

    figure = stylemix_figure(G, [0, 1], [2, 3, 4], truncation_psi=0.7)
    assert figure.shape == ((1 + 3 * 2) * 32, (1 + 3) * 32, 3) and figure.dtype == np.uint8
    cell = lambda r, c: figure[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32]  # noqa: E731
    for k, band in enumerate(("coarse", "middle", "fine")):
        _, col_images, cells = style_mixing(G, [0, 1], [2, 3, 4], style_bands(8)[band], 0.7)
        assert np.array_equal(cell(0, 1), _common.to_pixels(col_images)[0])
        assert np.array_equal(cell(1 + 2 * k + 1, 3), _common.to_pixels(cells[1, 2:3])[0])
    assert np.array_equal(cell(1, 0), cell(3, 0))  # every block repeats the row images


def load(path):
    from stylegan_fast.train.checkpoint import load_generator

    return load_generator(path)


def test_mix_bad_styles_one_line(network, tmp_path, capsys):
    argv = [
        "mix",
        "--network",
        str(network),
        "--rows",
        "0",
        "--cols",
        "1",
        "--outdir",
        str(tmp_path),
        "--styles",
        "9-12",
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == "stylegan-fast mix: error: --styles: layers must be in [0, 7], got 12\n"
