"""stylegan-fast generate: files, sizes, determinism per seed, truncation and noise modes."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_fast import cli
from stylegan_fast.commands import _arguments
from stylegan_fast.tools import _common, generate_images, seed_to_z


def run_cli(*argv):
    return cli.main([str(a) for a in argv])


def read(path):
    return np.asarray(Image.open(path))


def test_parse_range():
    assert _arguments.parse_range("0-3") == [0, 1, 2, 3]
    assert _arguments.parse_range("0,3,5-7") == [0, 3, 5, 6, 7]
    assert _arguments.parse_range(" 4 ") == [4]
    for bad in ["", "a", "3-1", "1,,2", "-2", "1-x"]:
        with pytest.raises(ValueError, match="--seeds"):
            _arguments.parse_range(bad)
    with pytest.raises(ValueError, match="<= 4294967295"):
        _arguments.parse_seeds("4294967296")


def test_seed_to_z_is_the_documented_draw():
    expected = torch.randn([64], generator=torch.Generator().manual_seed(7))
    assert torch.equal(seed_to_z(7, 64), expected)
    assert not torch.equal(seed_to_z(7, 64), seed_to_z(8, 64))


def test_generate_writes_one_png_per_seed_and_a_grid(network, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        run_cli(
            "generate",
            "--network",
            network,
            "--seeds",
            "0-4",
            "--outdir",
            out,
            "--grid",
            "--device",
            "cpu",
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png"] + [f"seed{s:04d}.png" for s in range(5)]
    for s in range(5):
        assert read(out / f"seed{s:04d}.png").shape == (32, 32, 3)
    grid = read(out / "grid.png")
    assert grid.shape == (2 * 32, 3 * 32, 3)  # 5 images: 3 columns, 2 rows
    assert np.array_equal(grid[32:, 32:64], read(out / "seed0004.png"))
    assert np.all(grid[32:, 64:] == 255)  # the blank cell
    assert "wrote 5 images" in capsys.readouterr().out


def test_same_seed_same_bytes_different_seeds_differ(network, tmp_path):
    a, b, c = (tmp_path / k for k in "abc")
    common = ["--network", network, "--noise-mode", "random", "--device", "cpu"]
    run_cli("generate", *common, "--seeds", "3,5", "--outdir", a)
    run_cli("generate", *common, "--seeds", "3,5", "--outdir", b)
    # Another batch split and seed order: the same latent and noise; batched float
    # arithmetic may round a pixel to the next level, no further.
    run_cli("generate", *common, "--seeds", "5,3", "--outdir", c, "--batch", "1")
    for s in (3, 5):
        name = f"seed{s:04d}.png"
        assert (a / name).read_bytes() == (b / name).read_bytes()
        diff = np.abs(read(a / name).astype(int) - read(c / name).astype(int))
        assert diff.max() <= 1
    assert np.abs(read(a / "seed0003.png").astype(int) - read(a / "seed0005.png")).max() > 20


def test_images_match_an_explicit_forward(G):
    z = torch.stack([seed_to_z(s, G.z_dim) for s in (0, 1)])
    got = {}
    for mode in ("const", "none"):
        expected = G(z, truncation_psi=0.5, truncation_cutoff=4, noise_mode=mode)
        got[mode] = generate_images(G, [0, 1], 0.5, 4, mode)
        torch.testing.assert_close(got[mode], expected, rtol=1e-5, atol=1e-5)
    # Random noise is the seed's: explicit noise images drawn from noise_for_seed.
    noise = _common.noise_for_seed(G, 1)
    expected = G.synthesis(G.mapping(z[1:], None, 0.5, 4), "random", noise)
    got["random"] = generate_images(G, [1], 0.5, 4, "random")
    torch.testing.assert_close(got["random"], expected)
    # The three noise modes give different images.
    assert not torch.allclose(got["const"][1], got["none"][1])
    assert not torch.allclose(got["const"][1], got["random"][0])


def test_truncation_psi_zero_gives_the_average_image(G):
    images = generate_images(G, [0, 1, 2], 0.0, None, "const")
    w_avg = G.w_avg.expand(1, G.num_ws, -1)
    expected = G.synthesis(w_avg, "const")
    for image in images:
        torch.testing.assert_close(image, expected[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "x"], "--seeds: 'x' is not an integer"),
        (["--seeds", "0", "--trunc", "1.5"], "--trunc: must be in [0, 1]"),
        (["--seeds", "0", "--trunc-cutoff", "99"], "--trunc-cutoff: must be in [0, num_ws=8]"),
        (["--seeds", "0", "--class", "1"], "--class: this generator is unconditional"),
        (["--seeds", "0", "--device", "nonsense"], "--device: not a device name"),
        (["--seeds", "0", "--batch", "0"], "--batch: must be >= 1"),
    ],
)
def test_bad_arguments_give_one_line(network, tmp_path, capsys, argv, message):
    argv = ["generate", "--network", str(network), "--outdir", str(tmp_path / "o"), *argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stylegan-fast generate: error: ")
    assert message in err


def test_missing_network_is_one_line(tmp_path, capsys):
    argv = [
        "generate",
        "--network",
        str(tmp_path / "nope.safetensors"),
        "--seeds",
        "0",
        "--outdir",
        str(tmp_path / "o"),
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.safetensors: no such file" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["generate", "mix"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--network" in out and "--device" in out and "--impl" in out
