"""``stylegan-fast import`` (files written, --list), the tools on a ``.pkl`` and on an
imported checkpoint, ``train --init`` (from a pickle, an export, a rosinality file; the
shape-mismatch error), ``--resume`` of an imported checkpoint, and ``--freeze-d``."""

import pytest
import torch
from nvlabs_fixtures import write_fake_stylegan1_pickle
from PIL import Image
from rosinality_fixtures import discriminator_shapes, generator_shapes, random_state

from stylegan_fast import cli
from stylegan_fast.models import Discriminator
from stylegan_fast.pretrained import detect_kind, load_networks
from stylegan_fast.train import checkpoint as ckpt
from stylegan_fast.train.freeze import frozen_d_parameters

SHORT = ["--batch", "2", "--no-progress", "--device", "cpu", "--snap", "0.002"]


@pytest.fixture(scope="module")
def pickle_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("pkl") / "karras2019stylegan-fake-16x16.pkl"
    write_fake_stylegan1_pickle(path, resolution=16)
    return path


@pytest.fixture(scope="module")
def imported(pickle_path, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("imported")
    assert cli.main(["import", str(pickle_path), "--outdir", str(outdir)]) == 0
    return outdir


def test_import_writes_an_export_and_a_checkpoint_with_the_pickles_networks(pickle_path, imported):
    original = load_networks(pickle_path)
    assert detect_kind(imported / "generator.safetensors") == "export"
    assert detect_kind(imported / "checkpoint.safetensors") == "checkpoint"
    export = ckpt.load_generator(imported / "generator.safetensors")
    state = ckpt.load_checkpoint(imported / "checkpoint.safetensors")
    assert state["imported"] == {"file": pickle_path.name, "kind": "nvlabs"}
    for key in ("G", "D", "G_ema"):
        for name, value in original[key].state_dict().items():
            assert torch.equal(state[key][name], value), (key, name)
    for name, value in original["G_ema"].state_dict().items():
        assert torch.equal(export.state_dict()[name], value), name
    nets = load_networks(imported / "checkpoint.safetensors")
    assert nets["D"].resolution == 16 and nets["G"].progressive  # as the pickle's


def test_import_list_prints_the_architecture_and_writes_nothing(pickle_path, tmp_path, capsys):
    assert cli.main(["import", "--list", str(pickle_path)]) == 0
    out = capsys.readouterr().out
    assert "StyleGAN1 network pickle" in out and "16x16" in out
    assert not list(tmp_path.iterdir())


def test_the_tools_read_a_pickle_and_an_imported_checkpoint_alike(pickle_path, imported, tmp_path):
    images = {}
    for name, network in (
        ("pkl", pickle_path),
        ("checkpoint", imported / "checkpoint.safetensors"),
        ("export", imported / "generator.safetensors"),
    ):
        outdir = tmp_path / name
        argv = ["generate", "--network", str(network), "--seeds", "3", "--outdir", str(outdir)]
        assert cli.main([*argv, "--device", "cpu"]) == 0
        images[name] = Image.open(outdir / "seed0003.png").tobytes()
    assert images["pkl"] == images["checkpoint"] == images["export"]
    noise = ["noise", "--network", str(pickle_path), "--seed", "0", "--outdir", str(tmp_path / "n")]
    assert cli.main([*noise, "--device", "cpu"]) == 0


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"GIF89a not a network", "not a network file (starts with b'GIF89a n'"),
    ],
)
def test_unknown_files_get_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "net.pkl"
    path.write_bytes(content)
    argv = ["generate", "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert cli.main(["import", str(path), "--outdir", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def _train(tmp_path, name, *argv, kimg="0.004"):
    outdir = tmp_path / name
    assert cli.main(["train", *SHORT, "--kimg", kimg, "--outdir", str(outdir), *argv]) == 0
    return outdir, ckpt.load_checkpoint(sorted((outdir / "checkpoints").iterdir())[-1])


def test_init_from_a_pickle_fine_tunes_at_its_resolution_and_freeze_d_holds_layers(
    pickle_path, tmp_path
):
    outdir, state = _train(tmp_path, "ft", "--init", str(pickle_path), "--freeze-d", "1")
    assert state["progress"]["images_seen"] == 4 and state["progress"]["lod"] == 0
    assert state["config"]["G"]["progressive"] is False and state["config"]["G"]["resolution"] == 16
    assert state["config"]["train"]["freeze_d"] == 1
    source = load_networks(pickle_path)["D"]
    fixed = Discriminator(source.config.replace(progressive=False))
    frozen = frozen_d_parameters(fixed, 1)
    assert sorted(frozen) == [
        "blocks.2.conv0.bias", "blocks.2.conv0.weight", "blocks.2.conv1.bias",
        "blocks.2.conv1.weight", "fromrgb.2.bias", "fromrgb.2.weight",
    ]  # fmt: skip
    before = source.state_dict()
    for name in state["D"]:
        if name in frozen:
            assert torch.equal(state["D"][name], before[name]), name  # bit-identical
    trained = [n for n, _ in fixed.named_parameters() if n not in frozen]
    assert all(not torch.equal(state["D"][n], before[n]) for n in trained)
    # G trained from the pickle's G (not from scratch): close to it after 2 steps.
    g_before = load_networks(pickle_path)["G"].state_dict()
    name = "synthesis.blocks.1.layer1.conv.weight"
    assert 0 < (state["G"][name] - g_before[name]).abs().max() < 0.05


def test_init_from_an_export_and_resume_of_an_imported_checkpoint(imported, tmp_path, capsys):
    _, state = _train(tmp_path, "export", "--init", str(imported / "generator.safetensors"))
    assert "holds no discriminator: D starts from random weights" in capsys.readouterr().out
    resumed_dir, resumed = _train(
        tmp_path, "resume", "--resume", str(imported / "checkpoint.safetensors"), kimg="0.002"
    )
    out = capsys.readouterr().out
    assert "imported checkpoint (weights only): starting from it as --init" in out
    assert resumed["progress"]["images_seen"] == 2 and not resumed["config"]["G"]["progressive"]


def test_init_from_a_rosinality_checkpoint(tmp_path):
    channels = (8, 8, 8)
    path = tmp_path / "stylegan-16px-new.model"
    g = random_state(generator_shapes(channels, width=8, n_mlp=2), seed=1)
    d = random_state(discriminator_shapes(channels), seed=2)
    torch.save({"generator": g, "discriminator": d, "g_running": g}, path)
    _, state = _train(tmp_path, "ros", "--init", str(path), kimg="0.002")
    assert state["config"]["G"]["norm_eps"] == 1e-5
    assert state["config"]["D"]["mbstd_group_size"] == 2**31 - 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "tiny"], "G tensor 'mapping.w_avg' is [8] in the file but [64] in the net"),
        (["--freeze-d", "3"], "freeze_d must be in [0, 2]"),
        (["--freeze-d", "-1"], "--freeze-d must be >= 0"),
        (["--progressive"], "--init fine-tunes at the file's fixed resolution"),
        (["--resume", "x.safetensors"], "--resume: no checkpoint file"),
        (["--channels", "1"], "makes 3-channel images, not 1"),
    ],
)
def test_init_errors_are_one_line(pickle_path, tmp_path, capsys, argv, message):
    base = ["train", *SHORT, "--kimg", "0.002", "--outdir", str(tmp_path / "o")]
    assert cli.main([*base, "--init", str(pickle_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_init_needs_an_existing_file(tmp_path, capsys):
    assert cli.main(["train", "--init", str(tmp_path / "none.pkl"), "--no-progress"]) == 2
    assert "--init: no such file" in capsys.readouterr().err
