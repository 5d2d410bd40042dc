"""``stylegan-fast train``: a short run's outputs, --resume, and one-line errors."""

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_fast import cli
from stylegan_fast.train import checkpoint as ckpt
from stylegan_fast.train.stats import read_stats

SHORT = ["--batch", "2", "--fixed", "--no-progress", "--device", "cpu"]
FIGURES = ("samples", "stylemix", "interpolate")


def test_a_short_run_writes_checkpoints_samples_figures_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", *SHORT, "--kimg", "0.004", "--snap", "0.002", "--outdir", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "BundledFaces(images=100" in printed and "figures/samples.png" in printed
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["checkpoint-000000002.safetensors", "checkpoint-000000004.safetensors"]
    assert {"fakes-000000002.png", "fakes-000000004.png", "reals.png"} <= {
        p.name for p in (out / "samples").iterdir()
    }
    # The bundled faces are greyscale, so the model is too (L-mode figures).
    figures = {name: Image.open(out / "figures" / f"{name}.png") for name in FIGURES}
    assert {name: image.mode for name, image in figures.items()} == dict.fromkeys(FIGURES, "L")
    assert figures["samples"].size == (8 * 32, 4 * 32)
    assert figures["stylemix"].size == ((1 + 5) * 32, (1 + 3 * 3) * 32)  # 5 cols, 3 bands x 3 rows
    assert figures["interpolate"].size == (15 * 32, 32)
    G = ckpt.load_generator(out / "generator.safetensors")
    assert G.resolution == 32 and not G.progressive and G.img_channels == 1
    state = ckpt.load_checkpoint(out / "checkpoints" / names[-1])
    assert state["config"]["train"]["batch_size"] == 2
    assert state["config"]["train"]["r1_gamma"] == 1.0 and state["config"]["train"]["g_lr"] == 0.002

    # --resume from the first checkpoint continues to the same final weights.
    again = tmp_path / "again"
    resume = ["--resume", str(out / "checkpoints" / names[0]), "--outdir", str(again)]
    assert cli.main(["train", *SHORT, "--kimg", "0.004", "--snap", "0.002", *resume]) == 0
    resumed = ckpt.load_checkpoint(again / "checkpoints" / "checkpoint-000000004.safetensors")
    for name, value in state["G_ema"].items():
        assert torch.equal(resumed["G_ema"][name], value), name
    assert [r["kimg"] for r in read_stats(again / "stats.jsonl")] == [0.004]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch", "0"], "--batch must be >= 1"),
        (["--kimg", "-1"], "--kimg must be a positive number"),
        (["--r1-gamma", "nan"], "--r1-gamma must be >= 0"),
        (["--resume", "missing.safetensors"], "--resume: no checkpoint file at"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--data", "no/such/folder"], "dataset path no/such/folder does not exist"),
        (["--batch", "6", "--batch-gpu", "4"], "batch_gpu 4 must divide"),
        (["--channels", "2"], "--channels: invalid choice: 2"),
    ],
)
def test_bad_arguments_get_one_line(tmp_path, capsys, extra, message):
    assert cli.main(["train", "--outdir", str(tmp_path), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_channels_option_trains_a_colour_model_on_the_bundled_faces(tmp_path):
    out = tmp_path / "rgb"
    args = ["train", *SHORT, "--kimg", "0.002", "--snap", "0.002", "--channels", "3"]
    assert cli.main([*args, "--outdir", str(out)]) == 0
    assert ckpt.load_generator(out / "generator.safetensors").img_channels == 3
    assert Image.open(out / "figures" / "stylemix.png").mode == "RGB"


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--data", "--preset", "--resume", "--precision", "--snap", "--fixed"):
        assert option in text


@pytest.fixture(scope="module")
def labelled_zip(tmp_path_factory):
    """A greyscale 32x32 zip with 3 classes (sub-folders a, b, c; 3 images each) packed by
    ``prepare-data --labels-from-folders``."""
    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(0)
    for label, folder in enumerate("abc"):
        (root / "raw" / folder).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 60, (32, 32), dtype=np.uint8) + 90 * label
            Image.fromarray(pixels.astype(np.uint8)).save(root / "raw" / folder / f"{i}.png")
    dest = root / "labelled.zip"
    args = ["prepare-data", str(root / "raw"), "--dest", str(dest), "--resolution", "32"]
    assert cli.main([*args, "--channels", "1", "--labels-from-folders"]) == 0
    return dest


def _rows_of(path, side=32):
    image = np.asarray(Image.open(path))
    return image.shape[0] // side, image.shape[1] // side


def test_cond_trains_a_conditional_model_with_classes_in_rows(tmp_path, labelled_zip, capsys):
    out = tmp_path / "cond"
    args = ["train", *SHORT, "--kimg", "0.002", "--snap", "0.002", "--channels", "1"]
    assert cli.main([*args, "--data", str(labelled_zip), "--cond", "--outdir", str(out)]) == 0
    assert "training tiny, 3 classes on" in capsys.readouterr().out
    G = ckpt.load_generator(out / "generator.safetensors")
    state = ckpt.load_checkpoint(out / "checkpoints" / "checkpoint-000000002.safetensors")
    assert G.c_dim == 3 and state["config"]["D"]["c_dim"] == 3
    # Sample grids: one row per class, 8 columns (one latent each).
    for grid in ("samples/reals.png", "samples/fakes-000000002.png", "figures/samples.png"):
        assert _rows_of(out / grid) == (3, 8), grid
    # The reals' row r holds class r's images (class brightness grows with the label).
    reals = np.asarray(Image.open(out / "samples" / "reals.png"), dtype=np.float64)
    means = [reals[32 * r : 32 * (r + 1), :96].mean() for r in range(3)]
    assert means[0] < means[1] < means[2]
    # The fakes' rows differ by class (same latent per column).
    fakes = np.asarray(Image.open(out / "samples" / "fakes-000000002.png"), dtype=np.float64)
    assert not np.array_equal(fakes[:32], fakes[32:64])

    # generate --class K: in range works, out of range and missing are one-line errors.
    generate = ["generate", "--network", str(out / "generator.safetensors"), "--seeds", "0"]
    generate += ["--device", "cpu", "--outdir"]
    assert cli.main([*generate, str(tmp_path / "g0"), "--class", "0"]) == 0
    assert cli.main([*generate, str(tmp_path / "g2"), "--class", "2"]) == 0
    capsys.readouterr()
    class0 = np.asarray(Image.open(tmp_path / "g0" / "seed0000.png"))
    assert not np.array_equal(class0, np.asarray(Image.open(tmp_path / "g2" / "seed0000.png")))
    for extra, message in (
        (["--class", "3"], "--class: must be in [0, 3), got 3"),
        (["--class", "-1"], "--class: must be in [0, 3), got -1"),
        ([], "--class: this generator is conditional; give a class in [0, 3)"),
    ):
        assert cli.main([*generate, str(tmp_path / "bad"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()


def test_a_labelled_set_trains_unconditionally_without_cond(tmp_path, labelled_zip, capsys):
    out = tmp_path / "plain"
    args = ["train", *SHORT, "--kimg", "0.002", "--snap", "0.002", "--channels", "1"]
    assert cli.main([*args, "--data", str(labelled_zip), "--outdir", str(out)]) == 0
    notices = [line for line in capsys.readouterr().out.splitlines() if "label classes" in line]
    assert notices == [
        f"note: {labelled_zip} has 3 label classes; training unconditionally (add --cond to "
        "condition G and D on them)"
    ]
    assert ckpt.load_generator(out / "generator.safetensors").c_dim == 0
    assert _rows_of(out / "samples" / "fakes-000000002.png") == (4, 8)


def test_labels_file_replaces_the_datasets_labels(tmp_path, labelled_zip):
    with zipfile.ZipFile(labelled_zip) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".png"))
    labels = tmp_path / "two.json"
    labels.write_text(json.dumps({"labels": [[name, i % 2] for i, name in enumerate(names)]}))
    out = tmp_path / "two"
    args = ["train", *SHORT, "--kimg", "0.002", "--snap", "0.002", "--channels", "1", "--cond"]
    args += ["--data", str(labelled_zip), "--labels", str(labels), "--outdir", str(out)]
    assert cli.main(args) == 0
    assert ckpt.load_generator(out / "generator.safetensors").c_dim == 2
    assert _rows_of(out / "samples" / "reals.png") == (2, 8)


def test_label_options_errors(tmp_path, labelled_zip, capsys):
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    Image.fromarray(np.zeros((32, 32), dtype=np.uint8)).save(unlabelled / "x.png")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"labels": [["nothing.png", 0]]}')
    cases = [
        (["--cond"], "--cond: the bundled faces have no labels"),
        (["--labels", str(bad_json)], "--labels: labels are used only with --cond"),
        (["--cond", "--data", str(labelled_zip), "--labels", "no.json"], "--labels: no such"),
        (["--cond", "--data", str(unlabelled)], f"--cond: {unlabelled} has no labels"),
        (["--cond", "--data", str(labelled_zip), "--labels", str(bad_json)], "no label for"),
    ]
    for extra, message in cases:
        out = tmp_path / "run"
        assert cli.main(["train", *SHORT, "--channels", "1", "--outdir", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (extra, err)
        assert not out.exists()


def test_resume_with_other_conditioning_is_one_line(tmp_path, labelled_zip, capsys):
    args = ["train", *SHORT, "--kimg", "0.002", "--snap", "0.002", "--channels", "1"]
    args += ["--data", str(labelled_zip)]
    assert cli.main([*args, "--cond", "--outdir", str(tmp_path / "cond")]) == 0
    checkpoint = tmp_path / "cond" / "checkpoints" / "checkpoint-000000002.safetensors"
    capsys.readouterr()
    resume = ["--resume", str(checkpoint), "--outdir", str(tmp_path / "plain")]
    assert cli.main([*args, "--kimg", "0.004", *resume]) == 2
    err = capsys.readouterr().err
    assert "the checkpoint's generator has c_dim 3 but this run's has 0" in err
    assert err.count("\n") == 1
