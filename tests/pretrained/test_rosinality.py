"""rosinality style-based-gan-pytorch checkpoints: our converted G, mapping and D against an
independent float64 forward of their math, the 1024² manifest from their naming rules, the
differences that warn, and files read with weights_only only."""

import math
import os
import warnings

import pytest
import torch
from rosinality_fixtures import (
    BLUR_SUFFIXES,
    OFFICIAL_CHANNELS,
    discriminator_forward,
    discriminator_shapes,
    generator_forward,
    generator_shapes,
    mapping_forward,
    random_state,
)

from stylegan_fast.pretrained import load_networks, rosinality
from stylegan_fast.pretrained.rosinality import RosinalityError, convert_generator, load_rosinality

# 4² .. 128² on StyleGAN's schedule (fmap_base 256, fmap_max 16); fused up-sampling at 128².
G_CHANNELS = (16, 16, 16, 16, 8, 4)
WIDTH, N_MLP = 16, 3


def _noise(batch, step, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 1, 4 * 2**i, 4 * 2**i, generator=generator) for i in range(step + 1)]


def _ours(G, z, noise, psi=1.0):
    per_layer = [n for n in noise for _ in range(2)]  # theirs: one noise image per block
    with torch.no_grad():
        w = G.mapping(z, truncation_psi=psi)
        return G.synthesis(w, noise=per_layer).double()


@pytest.mark.parametrize("resolution", [128, 32])
def test_converted_generator_matches_their_math(resolution):
    shapes = generator_shapes(G_CHANNELS, width=WIDTH, n_mlp=N_MLP)
    state = random_state(shapes, seed=1)
    G = convert_generator(state, resolution, w_avg_samples=2048)
    step = int(math.log2(resolution)) - 2
    assert G.resolution == resolution and G.config.fused_scale == "auto"
    assert G.synthesis.blocks[-1].layer0.conv.fused_resample == (resolution >= 128)
    z = torch.randn(3, WIDTH, generator=torch.Generator().manual_seed(2))
    noise = _noise(3, step, seed=3)
    with torch.no_grad():
        w = G.mapping(z)[:, 0].double()
    assert (w - mapping_forward(state, z, N_MLP)).abs().max() < 1e-5
    for psi in (1.0, 0.7):
        mean = G.w_avg if psi != 1 else None
        expected = generator_forward(state, z, noise, step, n_mlp=N_MLP, mean_style=mean, psi=psi)
        error = (_ours(G, z, noise, psi) - expected).abs().max().item()
        assert error < 1e-4, (psi, error)
        assert expected.abs().max() > 0.1  # a real image, not zeros


def test_up_convolution_biases_differ_and_warn():
    """Their up-conv bias goes before the zero-padded blur: the border ring differs."""
    state = random_state(
        generator_shapes(G_CHANNELS[:3], width=WIDTH, n_mlp=N_MLP), 1, up_bias=True
    )
    with pytest.warns(UserWarning, match="before the zero-padded blur"):
        G = convert_generator(state, 16, w_avg_samples=64)
    z = torch.randn(2, WIDTH, generator=torch.Generator().manual_seed(2))
    noise = _noise(2, 2, seed=3)
    error = (_ours(G, z, noise) - generator_forward(state, z, noise, 2, n_mlp=N_MLP)).abs()
    assert error.max() > 1e-3  # the independent forward does see the difference


def test_converted_discriminator_matches_their_math_with_whole_batch_stddev():
    channels = (8, 8, 8, 8, 8, 8)  # flat: their first-conv widening never happens
    state = random_state(discriminator_shapes(channels), seed=4)
    D = rosinality.convert_discriminator(state, 128)
    assert D.blocks[-1].conv1.fused_resample and not D.blocks[1].conv1.fused_resample
    img = torch.randn(8, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    img[::2] *= 4  # StyleGAN1's groups (samples n % 2) then see different spreads
    with torch.no_grad():
        ours = D(img).double()
    expected = discriminator_forward(state, img, step=5, n_blocks=6)
    assert (ours - expected).abs().max() < 1e-4
    # StyleGAN1's group of 4 is another function: the whole-batch group is what matches.
    D.blocks[0].mbstd.group_size = 4
    with torch.no_grad():
        assert (D(img).double() - expected).abs().max() > 1e-4


def test_discriminator_that_widens_in_the_first_conv_is_not_converted():
    state = random_state(discriminator_shapes((16, 16, 8)), seed=6)
    with pytest.warns(UserWarning, match="widens 8 -> 16 channels in the first convolution"):
        assert rosinality.convert_discriminator(state, 16) is None
    linear_rgb = random_state(discriminator_shapes((8, 8), activate=False), seed=6)
    with pytest.warns(UserWarning, match="no leaky ReLU"):
        assert rosinality.convert_discriminator(linear_rgb, 8) is None


def test_the_1024_manifest_from_the_naming_rules_converts_every_tensor():
    shapes = generator_shapes(OFFICIAL_CHANNELS)
    # mapping 8 x 2; the 4x4 block 9; every other block 12 (conv w/b, blur x2, 2 x (noise,
    # affine w/b), conv2 w/b); to_rgb 9 x 2.
    assert len(shapes) == 16 + 9 + 8 * 12 + 18 == 139
    total = sum(math.prod(s) for s in shapes.values())
    blur = sum(math.prod(s) for n, s in shapes.items() if n.endswith(BLUR_SUFFIXES))
    state = random_state(shapes, seed=0)
    G = convert_generator(state, 1024, w_avg_samples=1)
    ours = sum(p.numel() for p in G.parameters())
    lower_rgb = sum(3 * c + 3 for c in OFFICIAL_CHANNELS[:-1])
    # Their parameters = ours + the unused lower to_rgb - the 4x4 first layer's bias (their
    # constant has none; ours is set to 0); the blur kernels are buffers. Ours + every
    # to_rgb is StyleGAN1's Gs (26,219,627 in NVlabs' README).
    assert total - blur == ours + lower_rgb - 512 == 26_219_115
    assert ours + lower_rgb == 26_219_627
    assert G.config.fused_scale == "auto" and G.num_ws == 18 and G.resolution == 1024
    # Every name has a role: one more is named in the error, one fewer too.
    with pytest.raises(RosinalityError, match="no known role.*'generator.extra'"):
        convert_generator({**state, "generator.extra": torch.zeros(1)}, 1024, w_avg_samples=1)
    missing = dict(state)
    del missing["generator.progression.8.adain2.style.linear.bias"]
    with pytest.raises(RosinalityError, match="missing tensor 'generator.progression.8.adain2"):
        convert_generator(missing, 1024, w_avg_samples=1)


def _checkpoint(resolution_channels=G_CHANNELS[:4]):
    g = random_state(generator_shapes(resolution_channels, width=WIDTH, n_mlp=N_MLP), 7)
    g_running = random_state(generator_shapes(resolution_channels, width=WIDTH, n_mlp=N_MLP), 8)
    d = random_state(discriminator_shapes(resolution_channels[::-1]), 9)
    optimizer = {
        "state": {0: {"exp_avg": torch.zeros(2)}},
        "param_groups": [{"lr": 0.001, "params": [0]}],
    }
    return {
        "generator": g,
        "discriminator": d,
        "g_running": g_running,
        "g_optimizer": optimizer,
        "d_optimizer": optimizer,
    }


@pytest.mark.parametrize("zipped", [True, False])
def test_files_load_by_content_with_the_resolution_from_their_name(tmp_path, zipped):
    path = tmp_path / "train_step-3.model"  # step 3: 32²
    torch.save(_checkpoint(), path, _use_new_zipfile_serialization=zipped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # flat channels: D converts, no warning
        nets = load_networks(path)
    assert {k: v.resolution for k, v in nets.items()} == {"G": 32, "D": 32, "G_ema": 32}
    # G_ema is g_running, G the trained generator.
    weights = [nets[k].mapping.layers[0].weight for k in ("G", "G_ema")]
    assert not torch.equal(*weights)
    bare = tmp_path / "stylegan-16px-new.model"
    torch.save(_checkpoint()["g_running"], bare)
    nets = load_networks(bare)
    assert nets["G"] is None and nets["D"] is None and nets["G_ema"].resolution == 16
    assert "trained resolution: 16²" in rosinality.describe_rosinality(bare)


def test_bad_files_get_one_line(tmp_path):
    unnamed = tmp_path / "net.pt"
    torch.save(_checkpoint()["g_running"], unnamed)
    with pytest.raises(RosinalityError, match="do not store the trained resolution"):
        load_networks(unnamed)
    assert load_networks(unnamed, resolution=8)["G_ema"].resolution == 8
    with pytest.raises(RosinalityError, match="blocks up to 32"):
        load_rosinality(unnamed, resolution=64)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(RosinalityError, match=r"keys \['weights'\], not a rosinality"):
        load_networks(other, resolution=8)


class _Hostile:
    def __reduce__(self):
        return (os.system, ("touch HACKED",))


def test_a_torch_file_naming_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"g_running": _Hostile()}, tmp_path / "evil-8px.model")
    with pytest.raises(RosinalityError, match="weights_only=True"):
        load_networks(tmp_path / "evil-8px.model")
    assert not (tmp_path / "HACKED").exists()
