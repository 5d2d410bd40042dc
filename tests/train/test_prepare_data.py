"""The prepare-data command: checking a folder and packing it into a training zip."""

import json
import zipfile

import numpy as np
import pytest
import torch
from train_fixtures import write_image

from stylegan_fast import cli
from stylegan_fast.train.data import ImageFolderDataset


@pytest.fixture
def source(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "raw"
    write_image(root / "cats" / "one.png", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    write_image(
        root / "cats" / "two.jpg", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), "JPEG"
    )
    write_image(root / "dogs" / "three.png", rng.integers(0, 256, (20, 30), dtype=np.uint8))
    (root / "dogs" / "broken.png").write_bytes(b"definitely not a png")
    labels = [["cats/one.png", 0], ["cats/two.jpg", 0], ["dogs/three.png", 1]]
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))
    return root


def test_check_reports_unusable_files_sizes_and_modes(source, capsys):
    assert cli.main(["prepare-data", str(source)]) == 1  # 1: some files unusable
    out = capsys.readouterr().out
    assert "4 PNG/JPEG files, 3 usable, 1 unusable" in out
    assert "unusable: dogs/broken.png: cannot decode image" in out
    assert "other files (ignored): 1" in out
    assert "shorter side 20..40 px" in out and "30x20: 2" in out
    assert "RGB: 2" in out and "L: 1" in out and "labels: 2 classes" in out
    (source / "dogs" / "broken.png").unlink()
    assert cli.main(["prepare-data", str(source)]) == 0


def test_pack_writes_a_zip_the_dataset_reads_unchanged(source, tmp_path, capsys):
    dest = tmp_path / "packed.zip"
    args = ["prepare-data", str(source), "--dest", str(dest), "--resolution", "16"]
    assert cli.main(args) == 2  # unusable file without --skip-bad: one clear line
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "stylegan-fast prepare-data: error: 1 unusable files (first: dogs/broken.png); fix or "
        "remove them, or pass --skip-bad"
    ]
    assert not dest.exists()
    assert cli.main([*args, "--skip-bad"]) == 0
    assert "wrote" in capsys.readouterr().out
    with zipfile.ZipFile(dest) as archive:
        names = sorted(archive.namelist())
        labels = json.loads(archive.read("dataset.json"))["labels"]
    assert names == [
        "00000/img00000000.png",
        "00000/img00000001.png",
        "00000/img00000002.png",
        "dataset.json",
    ]
    assert [label for _, label in labels] == [0, 0, 1]
    packed = ImageFolderDataset(dest, resolution=16)
    direct = ImageFolderDataset(source, resolution=16, skip_bad=True)
    assert packed.label_dim == direct.label_dim == 2
    for i in range(3):  # same conversion, then lossless PNG: identical tensors
        assert torch.equal(packed[i][0], direct[i][0]) and torch.equal(packed[i][1], direct[i][1])


def test_pack_greyscale_without_labels(source, tmp_path, capsys):
    dest = tmp_path / "grey.zip"
    args = ["prepare-data", str(source), "--dest", str(dest), "--resolution", "8"]
    assert cli.main([*args, "--channels", "1", "--labels", "none", "--skip-bad"]) == 0
    with zipfile.ZipFile(dest) as archive:
        assert json.loads(archive.read("dataset.json")) == {"labels": None}
    ds = ImageFolderDataset(dest, resolution=8, channels=1)
    assert len(ds) == 3 and ds[0][0].shape == (1, 8, 8) and ds.label_dim == 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dest", "x.zip"], "--dest needs --resolution"),
        (["--resolution", "0"], "--resolution must be positive"),
        (["--labels", "missing.json"], "--labels: missing.json does not exist"),
    ],
)
def test_bad_arguments_get_one_line(source, capsys, extra, message):
    assert cli.main(["prepare-data", str(source), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_missing_source(tmp_path, capsys):
    assert cli.main(["prepare-data", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_labels_from_folders_writes_labels_and_the_class_mapping(source, tmp_path, capsys):
    (source / "dataset.json").unlink()  # the folder names are the labels now
    (source / "dogs" / "broken.png").unlink()
    write_image(source / "birds" / "x.png", np.zeros((12, 12, 3), dtype=np.uint8))
    dest = tmp_path / "folders.zip"
    args = ["prepare-data", str(source), "--dest", str(dest), "--resolution", "8"]
    assert cli.main([*args, "--labels-from-folders"]) == 0
    assert "labels: 3 classes from folders (birds, cats, dogs)" in capsys.readouterr().out
    with zipfile.ZipFile(dest) as archive:
        content = json.loads(archive.read("dataset.json"))
    # Sorted folder names -> 0, 1, 2; images in path order: birds/x, cats/one, cats/two, dogs/three.
    assert content["classes"] == {"birds": 0, "cats": 1, "dogs": 2}
    assert [label for _, label in content["labels"]] == [0, 1, 1, 2]
    packed = ImageFolderDataset(dest, resolution=8)
    assert packed.label_dim == 3 and packed[3][1].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "layout, extra, message",
    [
        ("root", [], "--labels-from-folders: top.png is not in a class sub-folder"),
        ("one", [], "--labels-from-folders: expected one sub-folder per class, found 1"),
        ("ok", ["--labels", "x.json"], "--labels-from-folders: give it or --labels, not both"),
    ],
)
def test_labels_from_folders_errors(tmp_path, capsys, layout, extra, message):
    root = tmp_path / "raw"
    pixels = np.zeros((8, 8), dtype=np.uint8)
    write_image(root / "a" / "one.png", pixels)
    if layout == "root":
        write_image(root / "top.png", pixels)
    if layout != "one":
        write_image(root / "b" / "two.png", pixels)
    assert cli.main(["prepare-data", str(root), "--labels-from-folders", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
