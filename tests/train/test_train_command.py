"""``stylegan-fast train``: a short run's outputs, --resume, and one-line errors."""

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
