"""Configs and presets: shapes and num_ws of every preset, the paper's parameter counts,
JSON round trips that rebuild identical models, overrides, and bad configs."""

import json
import math

import pytest
import torch

from stylegan_fast.models import (
    PRESETS,
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    preset_configs,
)

PAPER_PRESETS = [f"stylegan-{2**k}" for k in range(5, 11)]


def count(model):
    return sum(p.numel() for p in model.parameters())


def expected_generator_params(cfg: GeneratorConfig) -> int:
    """From the architecture's description, layer by layer."""
    widths = [cfg.z_dim * (2 if cfg.c_dim else 1)]
    widths += [cfg.mapping_dim] * (cfg.mapping_layers - 1) + [cfg.w_dim]
    total = sum(a * b + b for a, b in zip(widths[:-1], widths[1:])) + cfg.c_dim * cfg.z_dim
    nf = lambda stage: min(int(cfg.fmap_base / 2 ** (stage * cfg.fmap_decay)), cfg.fmap_max)  # noqa: E731
    epilogue = lambda c: 2 * c + cfg.w_dim * 2 * c + 2 * c  # noise, bias, affine (w+b)  # noqa: E731
    log2 = int(math.log2(cfg.resolution))
    total += nf(1) * 16 + epilogue(nf(1)) + nf(1) * nf(1) * 9 + epilogue(nf(1))  # 4x4
    for k in range(3, log2 + 1):
        cin, c = nf(k - 2), nf(k - 1)
        total += cin * c * 9 + epilogue(c) + c * c * 9 + epilogue(c)
    rgb_stages = range(2, log2 + 1) if cfg.progressive else [log2]
    total += sum(nf(k - 1) * cfg.img_channels + cfg.img_channels for k in rgb_stages)
    return total


def expected_discriminator_params(cfg: DiscriminatorConfig) -> int:
    nf = lambda stage: min(int(cfg.fmap_base / 2 ** (stage * cfg.fmap_decay)), cfg.fmap_max)  # noqa: E731
    log2 = int(math.log2(cfg.resolution))
    rgb_stages = range(2, log2 + 1) if cfg.progressive else [log2]
    total = sum(cfg.img_channels * nf(k - 1) + nf(k - 1) for k in rgb_stages)
    for k in range(3, log2 + 1):
        c, cout = nf(k - 1), nf(k - 2)
        total += c * c * 9 + c + c * cout * 9 + cout
    c4 = nf(1)
    total += (c4 + cfg.mbstd_num_features) * c4 * 9 + c4  # conv after minibatch stddev
    total += 16 * c4 * nf(0) + nf(0) + nf(0) * max(cfg.c_dim, 1) + max(cfg.c_dim, 1)
    return total


@pytest.mark.parametrize("name", [*PAPER_PRESETS, "tiny"])
def test_every_preset_builds_with_its_shapes(name):
    g_cfg, d_cfg = preset_configs(name)
    with torch.device("meta"):  # construct, don't allocate or run, the big ones
        G, D = Generator.from_config(g_cfg), Discriminator.from_config(d_cfg)
    R = g_cfg.resolution
    assert G.resolution == D.resolution == R
    assert G.num_ws == 2 * int(math.log2(R)) - 2 == G.mapping.num_ws
    assert len(G.synthesis.blocks) == int(math.log2(R)) - 1
    assert G.max_lod == int(math.log2(R)) - 2
    assert G.synthesis.blocks[-1].torgb.out_channels == 3
    assert count(G) == expected_generator_params(g_cfg)
    assert count(D) == expected_discriminator_params(d_cfg)
    if name != "tiny":
        assert (G.z_dim, G.w_dim, len(G.mapping.layers)) == (512, 512, 8)
        assert G.mapping.layers[0].lr_mul == 0.01
        # Channels: 512 up to 32², then halving: nf(k - 1) with 8192 / 512 / 1.
        channels = [b.layer1.epilogue.channels for b in G.synthesis.blocks]
        assert channels == [min(8192 // 2 ** (k - 1), 512) for k in range(2, len(channels) + 2)]


def test_paper_parameter_counts():
    g_cfg, d_cfg = preset_configs("stylegan-1024")
    with torch.device("meta"):
        G, D = Generator.from_config(g_cfg), Discriminator.from_config(d_cfg)
        G_prog = Generator.from_config(g_cfg.replace(progressive=True))
    # The paper's 26.2M for the StyleGAN generator at 1024² (Karras et al. 2019, table 1 text).
    assert count(G) == 26_212_019
    assert round(count(G) / 1e6, 1) == 26.2
    # Progressive models keep a toRGB per resolution (+7,611: StyleGAN1's own network summary).
    assert round(count(G_prog) / 1e6, 1) == 26.2
    assert count(G_prog) - count(G) == sum(c * 3 + 3 for c in [512] * 4 + [256, 128, 64, 32])
    assert count(G.mapping) == 8 * (512 * 512 + 512)
    assert count(D) == 23_077_137
    assert round(count(D) / 1e6, 1) == 23.1


def test_tiny_preset_is_small_and_complete():
    G = Generator.from_preset("tiny")
    D = Discriminator.from_preset("tiny")
    assert (G.resolution, G.z_dim, G.w_dim, G.num_ws) == (32, 64, 64, 8)
    assert count(G) < 400_000 and count(D) < 400_000
    # Every op of the real model: fused up-conv only from 128², so check both forms exist in
    # the paper preset and the tiny one uses nearest+conv+blur at every block.
    assert all(b.layer0.blur is not None for b in G.synthesis.blocks[1:])
    g1024, _ = preset_configs("stylegan-1024")
    assert [g1024.fused_at(2**k) for k in range(3, 11)] == [False] * 4 + [True] * 4


def test_json_round_trip_rebuilds_an_identical_model():
    g_cfg, d_cfg = preset_configs("tiny", c_dim=3, progressive=True, fused_scale=True)
    for cfg, cls in ((g_cfg, Generator), (d_cfg, Discriminator)):
        text = cfg.to_json()
        assert json.loads(text)["c_dim"] == 3
        assert type(cfg).from_json(text) == cfg
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
        torch.manual_seed(0)
        model = cls.from_config(cfg)
        torch.manual_seed(1)
        rebuilt = cls.from_config(json.loads(text))  # from the stored dict alone
        rebuilt.load_state_dict(model.state_dict())  # strict: identical structure
        assert rebuilt.config == model.config
        for (ka, va), (kb, vb) in zip(model.state_dict().items(), rebuilt.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)


def test_preset_overrides():
    g, d = preset_configs("stylegan-256", c_dim=10, progressive=True, z_dim=128)
    assert (g.c_dim, d.c_dim, g.progressive, d.progressive, g.z_dim) == (10, 10, True, True, 128)
    assert PRESETS["stylegan-256"].generator.c_dim == 0  # presets are not mutated
    assert Generator.from_preset("tiny", w_dim=32).w_dim == 32
    with pytest.raises(TypeError, match="unknown fields"):
        preset_configs("tiny", colour=True)
    with pytest.raises(TypeError, match="unknown fields"):
        Generator.from_preset("tiny", mbstd_group_size=2)  # a discriminator field
    with pytest.raises(ValueError, match="unknown preset"):
        preset_configs("stylegan-2048")


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("resolution", 48, "power of two"),
        ("resolution", 2, ">= 4"),
        ("fused_scale", "yes", "fused_scale"),
        ("fmap_base", 4, "channels at"),
        ("mapping_lr_mul", 0.0, "mapping_lr_mul"),
        ("w_avg_beta", 1.5, "w_avg_beta"),
        ("z_dim", 0, "z_dim"),
        ("blur_filter", (), "blur_filter"),
        ("progressive", 1, "progressive"),
    ],
)
def test_bad_generator_configs(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GeneratorConfig(**{"resolution": 32, field: value})


def test_bad_discriminator_and_dict_configs():
    with pytest.raises(ValueError, match="mbstd_num_features"):
        DiscriminatorConfig(resolution=32, mbstd_num_features=3)
    with pytest.raises(ValueError, match="unknown fields"):
        GeneratorConfig.from_dict({"resolution": 32, "depth": 3})
    cfg = GeneratorConfig(resolution=32)
    cfg.resolution = 33  # mutated after construction: the model re-validates
    with pytest.raises(ValueError, match="power of two"):
        Generator(cfg)
