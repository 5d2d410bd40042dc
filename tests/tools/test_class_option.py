"""``--class K`` of generate, mix and interpolate on a conditional generator: the class
reaches the mapping (images differ by class), and a class out of range, a missing class and
a class for an unconditional generator are one-line errors (exit 2, no output folder)."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_fast import cli
from stylegan_fast.models import Generator, preset_configs
from stylegan_fast.train.checkpoint import export_generator

COMMANDS = {
    "generate": (["--seeds", "0"], "seed0000.png"),
    "mix": (["--rows", "0", "--cols", "1"], "stylemix.png"),
    "interpolate": (["--seeds", "0,1", "--frames", "2"], "interpolate.png"),
}


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """A tiny generator at 8x8 with 4 classes, exported."""
    torch.manual_seed(7)
    G = Generator.from_config(preset_configs("tiny", resolution=8, c_dim=4)[0])
    path = tmp_path_factory.mktemp("cond") / "G.safetensors"
    export_generator(path, G)
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_class_selects_the_label(conditional, tmp_path, command):
    args, output = COMMANDS[command]
    images = []
    for label in (0, 3):
        out = tmp_path / f"class{label}"
        argv = [command, "--network", str(conditional), "--device", "cpu", *args]
        assert cli.main([*argv, "--class", str(label), "--outdir", str(out)]) == 0
        images.append(np.asarray(Image.open(out / output)))
    assert images[0].shape == images[1].shape and not np.array_equal(*images)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--class", "4"], "--class: must be in [0, 4), got 4"),
        (["--class", "-2"], "--class: must be in [0, 4), got -2"),
        ([], "--class: this generator is conditional; give a class in [0, 4)"),
        (["--class", "1", "--unconditional"], "--class: this generator is unconditional"),
    ],
)
def test_bad_class_is_one_line(conditional, network, tmp_path, capsys, command, extra, message):
    args, _ = COMMANDS[command]
    net = conditional
    if "--unconditional" in extra:
        extra, net = extra[:-1], network
    out = tmp_path / "out"
    argv = [command, "--network", str(net), "--device", "cpu", *args, *extra, "--outdir", str(out)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"stylegan-fast {command}: error: ")
    assert message in err
    assert not out.exists()
