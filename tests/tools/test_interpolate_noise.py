"""stylegan-fast interpolate and noise: frame counts and sizes, endpoints equal to the seeds'
images, the slerp, the GIF; noise samples and the std map (zero without noise)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_fast import cli
from stylegan_fast.tools import generate_images, interpolation, noise_variation, slerp


def test_slerp_first_principles():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, generator=g), torch.randn(16, generator=g)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    # Unit vectors: the point at t has angle t * theta from a and unit norm.
    ua, ub = a.double() / a.double().norm(), b.double() / b.double().norm()
    theta = math.acos(float(ua @ ub))
    for t in (0.25, 0.5, 0.9):
        p = slerp(ua, ub, t)
        assert abs(float(p.norm()) - 1) < 1e-12
        assert abs(math.acos(float(p @ ua)) - t * theta) < 1e-9
        assert abs(math.acos(float(p @ ub)) - (1 - t) * theta) < 1e-9


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_endpoints_are_the_seeds_images(G, space):
    seeds = [4, 7, 9]
    frames = interpolation(G, seeds, 4, space, 0.7, None, "const")
    assert frames.shape == (7, 3, 32, 32)  # 2 segments x 3 new frames + the start
    ends = generate_images(G, seeds, 0.7, None, "const")
    for frame, seed_image in zip(frames[[0, 3, 6]], ends):
        torch.testing.assert_close(frame, seed_image, rtol=1e-4, atol=1e-4)
    # Inner frames are neither end.
    assert (frames[1] - ends[0]).abs().max() > 0.01 and (frames[1] - ends[1]).abs().max() > 0.01


def test_w_midpoint_is_the_lerp_of_ws(G):
    from stylegan_fast.tools import seed_ws

    frames = interpolation(G, [0, 1], 3, "w", 1.0, None, "none")
    ws = seed_ws(G, [0, 1])
    expected = G.synthesis((ws[:1] + ws[1:]) / 2, "none")
    torch.testing.assert_close(frames[1:2], expected, rtol=1e-4, atol=1e-4)


def test_strip_wraps_frames_into_rows():
    from stylegan_fast.tools.interpolate import strip

    frames = np.random.default_rng(0).integers(0, 256, (5, 4, 3, 1), dtype=np.uint8)
    assert np.array_equal(strip(frames), np.concatenate(list(frames), axis=1))
    wrapped = strip(frames, frames_per_row=2)
    assert wrapped.shape == (3 * 4, 2 * 3, 1)
    assert np.array_equal(wrapped[8:, :3], frames[4]) and np.all(wrapped[8:, 3:] == 255)


def test_interpolate_command_writes_strip_and_gif(network, tmp_path):
    out = tmp_path / "i"
    argv = [
        "interpolate",
        "--network",
        str(network),
        "--seeds",
        "0,1",
        "--frames",
        "5",
        "--gif",
        "--outdir",
        str(out),
        "--space",
        "z",
        "--device",
        "cpu",
    ]
    assert cli.main(argv) == 0
    strip = Image.open(out / "interpolate.png")
    assert strip.size == (5 * 32, 32)
    gif = Image.open(out / "interpolate.gif")
    assert gif.size == (32, 32) and gif.n_frames == 5


def test_noise_variation_and_std_map(G):
    images, std = noise_variation(G, 3, samples=3, draws=16)
    assert images.shape == (3, 3, 32, 32) and std.shape == (32, 32)
    assert (images[0] - images[1]).abs().max() > 1e-3  # the noise changes the image
    # The map is the population std over the draws, recomputed here from first principles.
    all_images, _ = noise_variation(G, 3, samples=16, draws=16)
    x = all_images.double()
    expected = ((x - x.mean(0)) ** 2).mean(0).sqrt().mean(0)
    torch.testing.assert_close(std.double(), expected, rtol=1e-5, atol=1e-6)
    assert float(std.min()) > 0
    # Without noise every draw is the same image.
    _, still = noise_variation(G, 3, samples=2, draws=8, noise_mode="none")
    assert float(still.abs().max()) < 1e-6


def test_noise_command(network, tmp_path, capsys):
    out = tmp_path / "n"
    argv = [
        "noise",
        "--network",
        str(network),
        "--seed",
        "2",
        "--samples",
        "3",
        "--draws",
        "8",
        "--outdir",
        str(out),
        "--device",
        "cpu",
    ]
    assert cli.main(argv) == 0
    figure = np.asarray(Image.open(out / "noise.png"))
    assert figure.shape == (32, 4 * 32, 3)
    std_map = np.asarray(Image.open(out / "noise-std.png"))
    assert np.array_equal(figure[:, 96:], std_map) and std_map.max() == 255
    assert "max std" in capsys.readouterr().out
    assert cli.main([*argv[:-4], "--noise-mode", "none", "--outdir", str(out)]) == 0
    assert np.asarray(Image.open(out / "noise-std.png")).max() == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["interpolate", "--seeds", "3"], "--seeds: interpolation needs two or more seeds"),
        (["interpolate", "--seeds", "0,1", "--frames", "1"], "--frames: must be >= 2"),
        (["noise", "--seed", "-1"], "--seed: must be in [0, 4294967295], got -1"),
        (["noise", "--seed", "0", "--draws", "1"], "--draws: must be >= 2"),
    ],
)
def test_bad_arguments_one_line(network, tmp_path, capsys, argv, message):
    full = [*argv, "--network", str(network), "--outdir", str(tmp_path / "o")]
    assert cli.main(full) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize("command", ["interpolate", "noise"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert "--network" in capsys.readouterr().out
