"""stylegan_fast.nn: each layer against a direct first-principles computation (float64), every
CPU backend against the reference, gradcheck/gradgradcheck of the plain-torch layers, drop-in
use in plain PyTorch code, and bad arguments."""

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan_fast import nn as snn
from stylegan_fast import testing

F64 = torch.float64
CPU_IMPLS = testing.implemented_backends("layer_epilogue", "cpu")


def randomize_(module, generator, scale=0.5):
    """Nonzero values in every parameter (zero-initialised ones would hide terms)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * scale)
    return module


# --- equalized learning rate ----------------------------------------------------------------


@pytest.mark.parametrize("activation", ["linear", "lrelu"])
def test_equal_linear_matches_scaled_f_linear(activation, rng):
    layer = snn.EqualLinear(6, 5, lr_mul=0.01, gain=math.sqrt(2), activation=activation)
    layer = randomize_(layer.double(), rng)
    x = torch.randn(3, 6, generator=rng, dtype=F64)
    weight = layer.weight * (math.sqrt(2) / math.sqrt(6) * 0.01)
    pre = F.linear(x, weight, layer.bias * 0.01)
    expected = pre if activation == "linear" else F.leaky_relu(pre, 0.2) * math.sqrt(2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_equal_linear_storage_and_init():
    torch.manual_seed(0)
    layer = snn.EqualLinear(256, 512, lr_mul=0.01, bias_init=2.0)
    # Stored N(0, 1) / lr_mul; the effective weight is N(0, 1/fan_in) at gain 1.
    assert abs(layer.weight.std().item() * 0.01 - 1) < 0.02
    assert abs(layer.effective_weight().std().item() * math.sqrt(256) - 1) < 0.02
    torch.testing.assert_close(layer.effective_bias(), torch.full([512], 2.0))
    torch.testing.assert_close(layer.bias, torch.full([512], 200.0))


def test_equal_linear_act_gain_and_ranks(rng):
    layer = randomize_(snn.EqualLinear(4, 3, activation="lrelu", act_gain=1.0).double(), rng)
    x = torch.randn(2, 5, 4, generator=rng, dtype=F64)  # any leading dims
    expected = F.leaky_relu(F.linear(x, layer.effective_weight(), layer.effective_bias()), 0.2)
    torch.testing.assert_close(layer(x), expected)


def test_equal_conv2d_matches_scaled_f_conv2d(rng):
    layer = snn.EqualConv2d(3, 4, 3, gain=math.sqrt(2), activation="lrelu", act_gain=1.0)
    layer = randomize_(layer.double(), rng)
    x = torch.randn(2, 3, 6, 5, generator=rng, dtype=F64)
    weight = layer.weight * (math.sqrt(2) / math.sqrt(3 * 9))
    expected = F.leaky_relu(F.conv2d(x, weight, layer.bias, padding=1), 0.2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_equal_conv2d_up_is_nearest_then_conv(fused, kernel_size, rng):
    layer = snn.EqualConv2d(3, 4, kernel_size, up=2, fused_resample=fused)
    layer = randomize_(layer.double(), rng)
    x = torch.randn(2, 3, 4, 5, generator=rng, dtype=F64)
    nearest = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    expected = F.conv2d(nearest, layer.effective_weight(), layer.bias, padding=kernel_size // 2)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_equal_conv2d_down_is_conv_then_average_pool(fused, kernel_size, rng):
    layer = snn.EqualConv2d(3, 4, kernel_size, down=2, fused_resample=fused)
    layer = randomize_(layer.double(), rng)
    x = torch.randn(2, 3, 8, 6, generator=rng, dtype=F64)
    conv = F.conv2d(x, layer.effective_weight(), padding=kernel_size // 2)
    expected = F.avg_pool2d(conv, 2) + layer.bias.reshape(1, -1, 1, 1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


# --- bias/activation, noise, style ----------------------------------------------------------


def test_bias_act_module(rng):
    layer = randomize_(snn.BiasAct(4, "lrelu", lr_mul=0.5).double(), rng)
    x = torch.randn(2, 4, 3, 3, generator=rng, dtype=F64)
    expected = F.leaky_relu(x + 0.5 * layer.bias.reshape(1, -1, 1, 1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(layer(x), expected)
    assert snn.BiasAct(4).bias.abs().sum() == 0  # zero-initialised


def test_noise_injection_module(rng):
    layer = snn.NoiseInjection(4).double()
    x = torch.randn(2, 4, 3, 3, generator=rng, dtype=F64)
    assert torch.equal(layer(x), x)  # zero strength: no noise until learned
    randomize_(layer, rng)
    noise = torch.randn(2, 1, 3, 3, generator=rng, dtype=F64)
    torch.testing.assert_close(layer(x, noise), x + layer.strength.reshape(1, -1, 1, 1) * noise)
    drawn = [layer(x, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], x)


def test_style_mod_and_adain(rng):
    adain = randomize_(snn.AdaIN(5, 4).double(), rng)
    x = torch.randn(2, 4, 3, 3, generator=rng, dtype=F64) * 3 + 1
    w = torch.randn(2, 5, generator=rng, dtype=F64)
    affine = adain.style.affine
    styles = w @ affine.effective_weight().T + affine.effective_bias()
    scale, bias = adain.style(w)
    torch.testing.assert_close(scale, 1 + styles[:, :4])
    torch.testing.assert_close(bias, styles[:, 4:])
    normed = F.instance_norm(x, eps=1e-8)
    expected = normed * (1 + styles[:, :4, None, None]) + styles[:, 4:, None, None]
    torch.testing.assert_close(adain(x, w), expected)


@pytest.mark.parametrize("add_noise", [True, False])
def test_layer_epilogue_module(add_noise, rng):
    layer = randomize_(snn.LayerEpilogue(4, 5, act_gain=1.3).double(), rng)
    x = torch.randn(2, 4, 3, 3, generator=rng, dtype=F64)
    w = torch.randn(2, 5, generator=rng, dtype=F64)
    noise = torch.randn(2, 1, 3, 3, generator=rng, dtype=F64)
    t = x + (layer.noise_strength.reshape(1, -1, 1, 1) * noise if add_noise else 0)
    u = F.leaky_relu(t + layer.bias.reshape(1, -1, 1, 1), 0.2) * 1.3
    scale, bias = layer.style(w)
    expected = F.instance_norm(u, eps=1e-8) * scale[:, :, None, None] + bias[:, :, None, None]
    torch.testing.assert_close(layer(x, w, noise, add_noise=add_noise), expected)


# --- resampling -----------------------------------------------------------------------------


def test_upsample_downsample_blur_modules(rng):
    x = torch.randn(2, 3, 4, 6, generator=rng, dtype=F64)
    nearest = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(snn.Upsample2d()(x), nearest)
    torch.testing.assert_close(snn.Downsample2d()(x), F.avg_pool2d(x, 2))
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=F64)
    kernel = (torch.outer(taps, taps) / 16).expand(3, 1, 3, 3)
    torch.testing.assert_close(snn.Blur()(x), F.conv2d(x, kernel, padding=1, groups=3))
    assert snn.Upsample2d(4)(x).shape == (2, 3, 16, 24)


# --- plain-torch layers: first principles, gradcheck, gradgradcheck -------------------------


def naive_minibatch_stddev(x, group_size, num_features):
    """One group and one feature split at a time, in Python loops."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    groups = n // g
    out = torch.empty(n, num_features, h, w, dtype=x.dtype)
    per = c // num_features
    for m in range(groups):
        members = [m + k * groups for k in range(g)]  # strided groups
        for f in range(num_features):
            block = x[members, f * per : (f + 1) * per]  # [g, per, h, w]
            std = (block.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
            for i in members:
                out[i, f] = std
    return torch.cat([x, out], dim=1)


@pytest.mark.parametrize("n, group_size, num_features", [(8, 4, 1), (6, 2, 2), (3, 4, 1)])
def test_minibatch_stddev_matches_loops(n, group_size, num_features, rng):
    x = torch.randn(n, 4, 3, 2, generator=rng, dtype=F64)
    layer = snn.MinibatchStdDev(group_size, num_features)
    torch.testing.assert_close(layer(x), naive_minibatch_stddev(x, group_size, num_features))


def test_minibatch_stddev_channels_last_and_half(rng):
    x = torch.randn(4, 4, 3, 3, generator=rng).contiguous(memory_format=torch.channels_last)
    y = snn.MinibatchStdDev()(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    yb = snn.MinibatchStdDev()(x.bfloat16())
    assert yb.dtype == torch.bfloat16
    testing.assert_close(yb, naive_minibatch_stddev(x.double(), 4, 1), slack=2)


def test_minibatch_stddev_and_pixel_norm_gradcheck(rng):
    x = torch.randn(4, 4, 2, 2, generator=rng, dtype=F64, requires_grad=True)
    mbstd = snn.MinibatchStdDev(2, 2)
    assert torch.autograd.gradcheck(mbstd, (x,))
    assert torch.autograd.gradgradcheck(mbstd, (x,))
    z = torch.randn(3, 5, generator=rng, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(snn.PixelNorm(), (z,))
    assert torch.autograd.gradgradcheck(snn.PixelNorm(), (z,))


def test_pixel_norm_first_principles(rng):
    z = torch.randn(3, 5, generator=rng, dtype=F64) * 4
    expected = z / (z.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()
    torch.testing.assert_close(snn.PixelNorm()(z), expected)
    assert torch.allclose(snn.PixelNorm()(z).square().mean(dim=1), torch.ones(3, dtype=F64))


# --- every backend against the reference ----------------------------------------------------


def make_layers():
    return [
        (snn.EqualLinear(6, 5, activation="lrelu"), [3, 6]),
        (snn.EqualConv2d(3, 4, 3, up=2, activation="lrelu"), [2, 3, 4, 4]),
        (snn.EqualConv2d(3, 4, 3, down=2, activation="lrelu"), [2, 3, 4, 4]),
        (snn.BiasAct(3, "lrelu"), [2, 3, 4, 4]),
        (snn.NoiseInjection(3), [2, 3, 4, 4]),
        (snn.Upsample2d(2, (1, 3, 3, 1)), [2, 3, 4, 4]),
        (snn.Downsample2d(2, (1, 3, 3, 1)), [2, 3, 4, 4]),
        (snn.Blur(), [2, 3, 4, 4]),
    ]


@pytest.mark.parametrize("impl", [i for i in CPU_IMPLS if i != "ref"])
def test_layers_match_reference_backend(impl, rng):
    for layer, shape in make_layers():
        randomize_(layer, rng)
        x = torch.randn(shape, generator=rng, requires_grad=True)
        outs, grads = [], []
        for backend in ("ref", impl):
            layer.set_impl(backend)
            layer.zero_grad()
            kwargs = {"generator": torch.Generator().manual_seed(3)}
            y = layer(x, **kwargs) if isinstance(layer, snn.NoiseInjection) else layer(x)
            gx, *gp = torch.autograd.grad(y.square().sum(), [x, *layer.parameters()])
            outs.append(y)
            grads.append([gx, *gp])
        testing.assert_close(outs[1], outs[0].double(), what=f"{layer}", slack=4)
        for a, e in zip(grads[1], grads[0]):
            testing.assert_close(a, e.double(), what=f"{layer} gradient", slack=8)
    epilogue = randomize_(snn.LayerEpilogue(3, 5), rng)
    adain = randomize_(snn.AdaIN(5, 3), rng)
    x, w = torch.randn(2, 3, 4, 4, generator=rng), torch.randn(2, 5, generator=rng)
    noise = torch.randn(2, 1, 4, 4, generator=rng)
    for layer, call in ((epilogue, lambda m: m(x, w, noise)), (adain, lambda m: m(x, w))):
        expected = call(layer.set_impl("ref"))
        testing.assert_close(call(layer.set_impl(impl)), expected.double(), slack=4)


# --- drop-in use ----------------------------------------------------------------------------


def make_plain_block():
    return torch.nn.Sequential(
        snn.EqualConv2d(3, 8, 3, activation="lrelu"),
        snn.NoiseInjection(8),
        snn.Blur(),
        snn.EqualConv2d(8, 8, 3, down=2),
        snn.BiasAct(8, "lrelu"),
        snn.MinibatchStdDev(2),
        torch.nn.Flatten(),
        snn.EqualLinear(9 * 4 * 4, 1),
    )


def test_drop_in_plain_pytorch_block(rng):
    """The layers compose with torch.nn containers, optimizers, state_dict and dtype casts,
    and set_impl reaches them through a plain nn.Sequential."""
    torch.manual_seed(0)
    block = make_plain_block()
    snn.set_impl(block, "ref")
    assert all(m.impl == "ref" for m in block if isinstance(m, snn.FusedModule))
    x = torch.randn(4, 3, 8, 8, generator=rng)
    opt = torch.optim.Adam(block.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = block(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert block[1].strength.abs().sum() > 0  # the noise strength learned something
    # Filters are constructor-derived buffers, not state: a fresh block loads the weights.
    assert not any("filter" in k for k in block.state_dict())
    rebuilt = make_plain_block()
    rebuilt.load_state_dict(block.state_dict())
    outputs = []
    for model in (block, rebuilt):
        torch.manual_seed(1)  # the same drawn noise
        outputs.append(model(x))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-6, atol=1e-7)
    half = block.to(torch.bfloat16)(x.bfloat16())
    assert half.dtype == torch.bfloat16 and torch.isfinite(half).all()


def test_extra_repr_shows_configuration():
    text = repr(snn.EqualConv2d(3, 4, 3, up=2, lr_mul=0.5, impl="ref"))
    assert "up=2" in text and "lr_mul=0.5" in text and "impl=ref" in text
    assert "group_size=4" in repr(snn.MinibatchStdDev())


# --- bad arguments --------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="impl must be one of"):
        snn.EqualLinear(3, 4, impl="gpu")
    with pytest.raises(ValueError, match="impl must be one of"):
        snn.set_impl(torch.nn.Sequential(snn.Blur()), "fast")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        snn.EqualConv2d(3, 4, 2)
    with pytest.raises(ValueError, match="up and down"):
        snn.EqualConv2d(3, 4, 3, up=2, down=2)
    with pytest.raises(ValueError, match="lr_mul"):
        snn.EqualLinear(3, 4, lr_mul=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        snn.EqualLinear(3, 4, activation="gelu")
    with pytest.raises(ValueError, match="4 features"):
        snn.EqualLinear(4, 2)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="3 features"):
        snn.EqualConv2d(3, 4, 3)(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="4 dimensions"):
        snn.Blur()(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="divisible by the group size"):
        snn.MinibatchStdDev(4)(torch.randn(6, 4, 2, 2))
    with pytest.raises(ValueError, match="divisible by num_features"):
        snn.MinibatchStdDev(2, 3)(torch.randn(4, 4, 2, 2))
    with pytest.raises(ValueError, match="must not sum to zero"):
        snn.Upsample2d(2, (1, -1))
