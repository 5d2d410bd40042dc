"""Generator: shapes, truncation, style mixing, noise modes, w_avg tracking, class
conditioning, progressive growing, state round trips, and bad arguments."""

import math

import pytest
import torch

from stylegan_fast import testing
from stylegan_fast.models import Generator, mix_ws, style_mix, truncate

N = 2


def z_for(G, n=N, seed=0):
    return torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))


def test_shapes_and_attributes(tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    w = G.mapping(z)
    assert w.shape == (N, G.num_ws, G.w_dim) == (N, 8, 64)
    assert torch.equal(w[:, 0], w[:, -1])  # one w broadcast to every layer
    img = G.synthesis(w, noise_mode="const")
    assert img.shape == (N, 3, 32, 32) and img.dtype == torch.float32
    torch.testing.assert_close(G(z, noise_mode="const"), img)
    assert (G.z_dim, G.c_dim, G.img_channels, G.resolution) == (64, 0, 3, 32)
    assert G.w_avg.shape == (64,) and "mapping.w_avg" in G.state_dict()
    assert "synthesis.lod" in G.state_dict() and G.lod.dtype == torch.float32


def test_mapping_first_principles(tiny_generator):
    """Pixel norm, then each dense layer as lrelu(z W^T * sqrt(2)/sqrt(fan_in) * lr_mul + b)."""
    G = tiny_generator().double()
    z = z_for(G).double() * 3
    x = z / z.square().mean(dim=1, keepdim=True).add(1e-8).sqrt()
    for layer in G.mapping.layers:
        scale = math.sqrt(2) / math.sqrt(layer.in_features) * 0.01
        x = torch.nn.functional.leaky_relu(x @ (layer.weight * scale).T + layer.bias * 0.01, 0.2)
    torch.testing.assert_close(G.mapping(z)[:, 3], x)


def test_truncation(tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    w = G.mapping(z)
    assert torch.equal(G.mapping(z, truncation_psi=1.0), w)  # psi 1: exactly the identity
    zero = G.mapping(z, truncation_psi=0.0)
    torch.testing.assert_close(zero, G.w_avg.expand_as(w))  # psi 0: w_avg everywhere
    half = G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    torch.testing.assert_close(half[:, :3], G.w_avg + 0.5 * (w[:, :3] - G.w_avg))
    assert torch.equal(half[:, 3:], w[:, 3:])  # layers >= cutoff untouched
    torch.testing.assert_close(truncate(w, G.w_avg, 0.5, 3), half)
    img = G(z, truncation_psi=0.0, noise_mode="const")
    torch.testing.assert_close(img[0], img[1])  # every sample is the average image
    extrapolated = G.mapping(z, truncation_psi=-0.5, allow_extrapolation=True)
    torch.testing.assert_close(extrapolated, G.w_avg - 0.5 * (w - G.w_avg))


def test_w_avg_tracking(tiny_generator):
    G = tiny_generator()
    z = z_for(G, 4)
    before = G.w_avg.clone()
    G.mapping(z)
    assert torch.equal(G.w_avg, before)  # not updated unless asked
    w = G.mapping(z, update_w_avg=True)
    torch.testing.assert_close(G.w_avg, w[:, 0].mean(0) + 0.995 * (before - w[:, 0].mean(0)))


def test_mix_ws_picks_layers(tiny_generator):
    G = tiny_generator()
    ws = [G.mapping(z_for(G, seed=s)) for s in range(3)]
    mixed = mix_ws(ws[:2], [3])
    assert torch.equal(mixed[:, :3], ws[0][:, :3]) and torch.equal(mixed[:, 3:], ws[1][:, 3:])
    three = mix_ws(ws, [2, 5])
    for layer, source in enumerate([0, 0, 1, 1, 1, 2, 2, 2]):
        assert torch.equal(three[:, layer], ws[source][:, layer])
    for bad in ([0], [8], [3, 3]):
        with pytest.raises(ValueError, match="crossover"):
            mix_ws(ws[: len(bad) + 1], bad)
    with pytest.raises(ValueError, match="one crossover per extra w"):
        mix_ws(ws, [3])


def test_style_mix_draws_from_its_generator(tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    w = G.mapping(z)
    assert torch.equal(style_mix(G, z, prob=0.0), w)
    mixed = style_mix(G, z, prob=1.0, generator=torch.Generator().manual_seed(7))
    # The same draws by hand: the coin, the crossover in [1, num_ws), then z'.
    gen = torch.Generator().manual_seed(7)
    assert torch.rand([], generator=gen).item() < 1.0
    crossover = int(torch.randint(1, G.num_ws, [], generator=gen))
    w2 = G.mapping(torch.randn(z.shape, generator=gen))
    torch.testing.assert_close(mixed, mix_ws([w, w2], [crossover]))
    again = style_mix(G, z, prob=1.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(mixed, again)  # reproducible bit for bit
    crossovers = set()
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        m = style_mix(G, z, prob=1.0, generator=gen)
        crossovers.add(int((m != w).any(dim=2).any(dim=0).nonzero()[0]))
    assert crossovers <= set(range(1, G.num_ws)) and len(crossovers) > 3
    with pytest.raises(ValueError, match="prob"):
        style_mix(G, z, prob=1.5)


def test_sync_free_style_mix_has_the_same_distribution_without_host_syncs(tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    w = G.mapping(z)
    torch.manual_seed(0)
    with testing.forbid_host_syncs():
        mixes = [style_mix(G, z, prob=0.5, sync_free=True) for _ in range(200)]
    mixed = [m for m in mixes if not torch.equal(m, w)]
    # The coin: about half the draws mix (200 draws: 0.5 +- 0.11 at 3 sigma).
    assert 0.39 < len(mixed) / len(mixes) < 0.61
    crossovers = set()
    for m in mixed:
        changed = (m != w).any(dim=2).any(dim=0)
        first = int(changed.nonzero()[0])
        crossovers.add(first)
        # Layers before the crossover are w, every layer from it on comes from one other w2.
        assert not changed[:first].any() and changed[first:].all()
        assert torch.equal(m[:, first:], m[:, first:][:, :1].expand_as(m[:, first:]))
    assert crossovers <= set(range(1, G.num_ws)) and len(crossovers) > 3
    assert torch.equal(style_mix(G, z, prob=0.0, sync_free=True), w)


def test_the_default_style_mix_syncs_which_is_why_sync_free_exists(tiny_generator):
    G = tiny_generator()
    with pytest.raises(testing.HostSyncError, match="_local_scalar_dense"):
        with testing.forbid_host_syncs():
            style_mix(G, z_for(G), prob=0.9)


def test_style_mix_respects_lod(tiny_generator):
    G = tiny_generator(progressive=True)
    G.set_lod(1.5)  # 16x16: the last two layers are unused, so never the crossover
    z = z_for(G)
    w = G.mapping(z)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        m = style_mix(G, z, prob=1.0, generator=gen)
        assert torch.equal(m[:, : G.num_ws - 2][:, :1], w[:, :1])
        assert (m[:, : G.num_ws - 2] != w[:, : G.num_ws - 2]).any()  # crossover < num_ws - 2


def test_noise_modes(tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    const = [G(z, noise_mode="const") for _ in range(2)]
    assert torch.equal(const[0], const[1])  # deterministic
    random = [G(z, noise_mode="random") for _ in range(2)]
    assert not torch.allclose(random[0], random[1])  # fresh noise each call
    seeded = [G(z, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(seeded[0], seeded[1])
    none = G(z, noise_mode="none")
    zeros = [torch.zeros(1, 1, 4 * 2 ** (i // 2), 4 * 2 ** (i // 2)) for i in range(G.num_ws)]
    torch.testing.assert_close(G(z, noise_mode="random", noise=zeros), none)  # given noise wins
    assert not torch.allclose(none, const[0])
    with torch.no_grad():  # no noise strength: every mode agrees
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    torch.testing.assert_close(G(z, noise_mode="random"), G(z, noise_mode="none"))
    layers = [m for m in G.modules() if hasattr(m, "noise_const") and m.noise_const is not None]
    assert [tuple(m.noise_const.shape[2:]) for m in layers] == [
        (4 * 2 ** (i // 2),) * 2 for i in range(G.num_ws)
    ]


def test_class_conditioning(tiny_generator, tiny_discriminator):
    G = tiny_generator(c_dim=3)
    D = tiny_discriminator(c_dim=3)
    z = z_for(G)
    eye = torch.eye(3)
    imgs = [G(z, eye[[k, k]], noise_mode="const") for k in range(3)]
    assert not torch.allclose(imgs[0], imgs[1])
    assert G.mapping.embed.shape == (3, 64) and G.mapping.layers[0].in_features == 128
    img = imgs[0]
    scores = [D(img, eye[[k, k]]) for k in range(3)]
    assert scores[0].shape == (2, 1)
    # D returns the score of the given label: linear in the one-hot c.
    torch.testing.assert_close(D(img, eye[[0, 0]] + eye[[1, 1]]), scores[0] + scores[1])
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match="shape"):
        D(img, eye[:2, :2])
    unconditional = tiny_generator()
    with pytest.raises(ValueError, match="unconditional"):
        unconditional(z, eye[[0, 1]])
    assert unconditional(z, torch.empty(2, 0), noise_mode="const").shape == (2, 3, 32, 32)


def test_progressive_growing(tiny_generator):
    G = tiny_generator(progressive=True)
    z = z_for(G)
    out = {}
    for lod in [0, 0.5, 1 - 1e-4, 1, 1 + 1e-4, 2, 3]:
        G.set_lod(lod)
        out[lod] = G(z, noise_mode="const")
        assert out[lod].shape == (N, 3, 32, 32)
    # Integer lods are nearest-upsampled low-resolution images: constant on 2**lod blocks.
    for lod in (1, 2, 3):
        s = 2**lod
        blocks = out[lod].unflatten(2, (-1, s)).unflatten(4, (-1, s))
        assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))
    # The fade is a linear blend of the two neighbouring levels.
    torch.testing.assert_close(out[0.5], (out[0] + out[1]) / 2, rtol=1e-5, atol=1e-5)
    # Continuous across the integer lod from both sides.
    level_step = (out[0] - out[1]).abs().max()
    assert level_step > 1e-2
    assert (out[1 - 1e-4] - out[1]).abs().max() < 1e-2 * level_step
    assert (out[1 + 1e-4] - out[1]).abs().max() < 1e-2 * level_step
    # The fixed-resolution model's output is the progressive one at lod 0.
    G.set_lod(0)
    fixed = Generator.from_preset("tiny")
    state = {k: v for k, v in G.state_dict().items() if k in fixed.state_dict()}
    fixed.load_state_dict(state)
    torch.testing.assert_close(fixed(z, noise_mode="const"), out[0])


def test_lod_state(tiny_generator):
    G = tiny_generator(progressive=True)
    G.set_lod(2.25)
    other = tiny_generator(progressive=True)
    other.load_state_dict(G.state_dict())  # the buffer and the block structure follow
    assert other.lod.item() == 2.25 and other.synthesis.lod_floor == 2
    z = z_for(G)
    torch.testing.assert_close(other(z, noise_mode="const"), G(z, noise_mode="const"))
    with pytest.raises(ValueError, match=r"lod must be in \[0, max_lod\] = \[0, 3\]"):
        G.set_lod(3.5)
    with pytest.raises(ValueError, match="fixed resolution"):
        tiny_generator().set_lod(1)
    tiny_generator().set_lod(0)
    with pytest.raises(ValueError, match="fixed resolution"):
        tiny_generator().load_state_dict(G.state_dict(), strict=False)


def test_channels_last_matches(tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    expected = G(z, noise_mode="const")
    G = G.to(memory_format=torch.channels_last)
    img = G(z, noise_mode="const")
    assert img.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(img, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["cast", "autocast"])
def test_bfloat16_runs_and_matches(mode, tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    expected = G(z, noise_mode="const")
    if mode == "cast":
        img = G.to(torch.bfloat16)(z.bfloat16(), noise_mode="const")
    else:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            img = G(z, noise_mode="const")
    assert img.dtype == torch.bfloat16
    # ~2**-8 per rounding through ~20 layers; instance norms keep errors from compounding.
    err = (img.float() - expected).norm() / expected.norm()
    assert err < 0.05, err


def test_bad_arguments(tiny_generator):
    G = tiny_generator()
    z = z_for(G)
    with pytest.raises(ValueError, match=r"truncation_psi must be in \[0, 1\]"):
        G(z, truncation_psi=1.5)
    with pytest.raises(ValueError, match="truncation_cutoff"):
        G(z, truncation_cutoff=9)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="fixed")
    with pytest.raises(ValueError, match=r"z must have shape \[N, z_dim\]"):
        G(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"w must have shape"):
        G.synthesis(torch.randn(2, 7, 64))
    with pytest.raises(ValueError, match="one entry per layer"):
        G.synthesis(G.mapping(z), noise=[None])
    with pytest.raises(RuntimeError, match="CUDA"):
        G.compile_graph(2)
