"""stylegan-fast metrics: FID and PPL through the command with tiny TorchScript networks,
the JSON line and metrics.jsonl, and its argument errors."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from metric_nets import MeanSquare, TinyFeatures, script
from PIL import Image

from stylegan_fast import cli
from stylegan_fast.metrics import frechet_distance


@pytest.fixture
def setup(network, tmp_path):
    net = tmp_path / "G.safetensors"
    shutil.copy(network, net)
    data = tmp_path / "data"
    data.mkdir()
    g = np.random.default_rng(0)
    for i in range(12):
        pixels = g.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data / f"{i:02d}.png")
    features = script(TinyFeatures(), tmp_path / "features.pt")
    distance = script(MeanSquare(), tmp_path / "distance.pt")
    return net, data, features, distance


def test_fid_and_ppl_lines(setup, capsys):
    net, data, features, distance = setup
    common = ["--network", str(net), "--device", "cpu"]
    fid = [
        "metrics",
        *common,
        "--metric",
        "fid10k",
        "--data",
        str(data),
        "--feature-net",
        str(features),
        "--feature-preprocessing",
        "identity",
        "--num",
        "12",
    ]
    assert cli.main(fid) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["metric"] == "fid10k" and line["num_gen"] == 12 and line["num_real"] == 12
    assert math.isfinite(line["value"]) and line["value"] > 0
    ppl = [
        "metrics",
        *common,
        "--metric",
        "ppl_w",
        "--distance-net",
        str(distance),
        "--num",
        "4",
        "--batch",
        "4",
    ]
    assert cli.main(ppl) == 0
    line2 = json.loads(capsys.readouterr().out.strip())
    assert line2["metric"] == "ppl_w" and math.isfinite(line2["value"]) and line2["value"] > 0
    assert line2["epsilon"] == 1e-4 and line2["num_samples"] == 4
    stored = [json.loads(x) for x in (net.parent / "metrics.jsonl").read_text().splitlines()]
    assert [s["metric"] for s in stored] == ["fid10k", "ppl_w"]
    assert stored[0]["value"] == line["value"]


def test_fid_value_is_the_frechet_distance_of_the_features(setup, capsys, G):
    """The command's FID equals one computed here by hand from the same images."""
    from stylegan_fast.metrics import generator_images
    from stylegan_fast.train.data import open_dataset

    net, data, features, _ = setup
    argv = [
        "metrics",
        "--network",
        str(net),
        "--device",
        "cpu",
        "--metric",
        "fid10k",
        "--data",
        str(data),
        "--feature-net",
        str(features),
        "--feature-preprocessing",
        "identity",
        "--num",
        "8",
        "--noise-mode",
        "const",
        "--num-real",
        "10",
    ]
    assert cli.main(argv) == 0
    value = json.loads(capsys.readouterr().out.strip())["value"]
    f = TinyFeatures().double()
    real = torch.stack([open_dataset(str(data), 32)[i][0] for i in range(10)])
    fake = generator_images(G, seed=0, noise_mode="const")(8).clamp(-1, 1)
    with torch.no_grad():
        fr, ff = f(real.double()).numpy(), f(fake.double()).numpy()
    expected = frechet_distance(
        fr.mean(0), np.cov(fr, rowvar=False), ff.mean(0), np.cov(ff, rowvar=False)
    )
    assert value == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_precision_recall_line(setup, capsys, G):
    """pr50k3: precision and recall by name in the line, equal to precision_recall() of the
    same features computed here."""
    from stylegan_fast.metrics import generator_images, precision_recall
    from stylegan_fast.train.data import open_dataset

    net, data, features, _ = setup
    argv = ["metrics", "--network", str(net), "--device", "cpu", "--metric", "pr50k3"]
    argv += ["--data", str(data), "--feature-net", str(features)]
    argv += ["--feature-preprocessing", "identity", "--num", "10", "--num-real", "10"]
    argv += ["--noise-mode", "const"]
    assert cli.main(argv) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["metric"] == "pr50k3" and line["num_gen"] == 10 and line["num_real"] == 10
    f = TinyFeatures()
    real = torch.stack([open_dataset(str(data), 32)[i][0] for i in range(10)])
    fake = generator_images(G, seed=0, noise_mode="const")(10).clamp(-1, 1)
    with torch.no_grad():
        expected = precision_recall(f(real), f(fake))
    assert (line["precision"], line["recall"]) == pytest.approx(expected)
    assert line["value"] == line["precision"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--metric", "fid50k"], "--feature-net: fid50k needs a feature network file"),
        (["--metric", "pr50k3"], "--feature-net: pr50k3 needs a feature network file"),
        (
            ["--metric", "fid50k", "--feature-net", "DIST"],
            "is not a TorchScript file",
        ),
        (["--metric", "ppl_z"], "--distance-net: ppl_z needs a perceptual distance file"),
        (["--metric", "ppl_z", "--distance-net", "/nonexistent"], "--distance-net: no such file"),
        (
            ["--metric", "kid50k", "--feature-net", "FEAT", "--data", "/nonexistent"],
            "--data: no such file or directory",
        ),
        (["--metric", "fid50k", "--num", "1"], "--num: must be >= 2"),
    ],
)
def test_bad_arguments_one_line(setup, capsys, extra, message):
    net, _, features, _ = setup
    bad = features.parent / "not_torchscript.pt"
    bad.write_bytes(b"plain bytes")
    extra = [str(features) if x == "FEAT" else str(bad) if x == "DIST" else x for x in extra]
    assert cli.main(["metrics", "--network", str(net), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_unknown_metric_and_help(capsys):
    assert cli.main(["metrics", "--network", "x", "--metric", "fid1m"]) == 2
    assert "invalid choice: 'fid1m'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["metrics", "--help"])
    assert exc.value.code == 0 and "--feature-net" in capsys.readouterr().out
