"""Progress output: stats.jsonl, TensorBoard mirroring, the progress bar, sample grids."""

import io
import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_fast.train.stats import (
    ProgressBar,
    RunningMeans,
    StatsWriter,
    read_stats,
    save_image_grid,
)


def test_stats_jsonl_is_appended_and_strict_json(tmp_path):
    with StatsWriter(tmp_path / "run", tensorboard=False) as writer:
        writer.write(
            0.5, {"loss/G": torch.tensor(1.25), "loss/D": 0.5, "lod": 2, "note": "x"}, step=3
        )
        writer.write(1.0, {"loss/G": float("nan"), "loss/D": torch.tensor(float("inf"))})
        assert not writer.tensorboard_enabled
    with StatsWriter(tmp_path / "run", tensorboard=False) as writer:  # a resumed run appends
        writer.write(1.5, {"loss/G": 0.75})
    lines = (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
    assert len(lines) == 3
    records = [
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON {c}")) for line in lines
    ]
    assert records == read_stats(tmp_path / "run" / "stats.jsonl")
    first = records[0]
    assert first["kimg"] == 0.5 and first["step"] == 3 and first["loss/G"] == 1.25
    assert first["lod"] == 2 and first["note"] == "x" and first["time"] > 1e9
    assert records[1]["loss/G"] == "nan" and records[1]["loss/D"] == "inf"
    assert [r["kimg"] for r in records] == [0.5, 1.0, 1.5]


def test_disabled_writer_writes_nothing(tmp_path):
    writer = StatsWriter(tmp_path / "rank1", enabled=False)
    writer.write(1.0, {"x": 1.0})
    writer.close()
    assert not (tmp_path / "rank1").exists()


def test_tensorboard_mirrors_numbers_when_available(tmp_path, monkeypatch):
    scalars = []

    class FakeSummaryWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, name, value, step):
            scalars.append((name, value, step))

        def flush(self):
            pass

        def close(self):
            pass

    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = FakeSummaryWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    with StatsWriter(tmp_path, tensorboard=None) as writer:
        assert writer.tensorboard_enabled
        writer.write(2.5, {"loss/G": 1.0, "note": "text"}, step=10)
    assert scalars == [("loss/G", 1.0, 2500)]


def test_tensorboard_required_but_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ImportError, match="pip install tensorboard"):
        StatsWriter(tmp_path, tensorboard=True)
    with StatsWriter(tmp_path) as writer:  # automatic: off, no error
        assert not writer.tensorboard_enabled


def test_running_means():
    means = RunningMeans()
    means.add({"a": torch.tensor(1.0), "b": 4.0})
    means.add({"a": torch.tensor(3.0)})
    assert means.means() == {"a": 2.0, "b": 4.0}
    assert means.means() == {}


def test_progress_bar_shows_kimg_rate_and_losses():
    stream = io.StringIO()
    bar = ProgressBar(total_kimg=10, start_kimg=2, file=stream)
    bar.update(2.5, {"G": torch.tensor(0.6931), "D": 1.3863})
    text = bar.text
    assert (
        "2.50/10.00 kimg" in text and "img/s=" in text and "G=0.6931" in text and "D=1.386" in text
    )
    bar.update(3.0, {"G": float("nan")})
    assert "3.00/10.00 kimg" in bar.text and "G=nan" in bar.text
    bar.close()
    assert ProgressBar(10, enabled=False).text == ""


def test_save_image_grid_places_images_row_by_row(tmp_path):
    # Six 2x3 images with constant values -1, -0.6, ..., 1 (clamped beyond), in a 3x2 grid.
    values = [-1.0, -0.6, -0.2, 0.2, 0.6, 1.5]
    images = torch.stack([torch.full((3, 2, 3), v) for v in values])
    images[0, 1] = 1.0  # image 0: green channel full
    save_image_grid(images, tmp_path / "grid.png", grid=(3, 2))
    pixels = np.asarray(Image.open(tmp_path / "grid.png"))
    assert pixels.shape == (4, 9, 3) and pixels.dtype == np.uint8
    for index, value in enumerate(values):
        row, col = divmod(index, 3)
        tile = pixels[row * 2 : row * 2 + 2, col * 3 : col * 3 + 3]
        level = round((min(value, 1.0) + 1) * 127.5)
        if index == 0:
            assert (tile[..., 0] == 0).all() and (tile[..., 1] == 255).all()
        else:
            assert (tile == level).all(), (index, tile[0, 0], level)
    grey = torch.linspace(-1, 1, 4).view(4, 1, 1, 1).expand(4, 1, 2, 2)
    save_image_grid(grey, tmp_path / "grey.png")  # default: one row
    grey_pixels = np.asarray(Image.open(tmp_path / "grey.png"))
    assert grey_pixels.shape == (2, 8) and grey_pixels[0, ::2].tolist() == [0, 85, 170, 255]


@pytest.mark.parametrize(
    "images, grid, error, message",
    [
        (torch.zeros(6, 3, 2, 2), (4, 2), ValueError, "grid 4x2 holds 8 images, got 6"),
        (torch.zeros(6, 2, 2, 2), (3, 2), ValueError, "1 or 3 channels"),
        (torch.zeros(3, 2, 2), (3, 1), ValueError, r"\[N, C, H, W\]"),
        (torch.zeros(2, 3, 2, 2, dtype=torch.uint8), (2, 1), TypeError, "floating point"),
        (torch.zeros(2, 3, 2, 2), (2, 0), ValueError, "positive ints"),
    ],
)
def test_save_image_grid_rejects_bad_input(tmp_path, images, grid, error, message):
    with pytest.raises(error, match=message):
        save_image_grid(images, tmp_path / "x.png", grid)
