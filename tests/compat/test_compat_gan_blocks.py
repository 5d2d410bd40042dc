"""A small StyleGAN2 generator block and discriminator block in each code base's style
(NVlabs: modulated conv, upsample2d/downsample2d/filter2d/upfirdn2d with setup_filter([1, 3,
3, 1]), bias_act; rosinality: Blur/Upsample via upfirdn2d with its pad arithmetic,
FusedLeakyReLU, fused_leaky_relu in an equal-lr linear), each run with the compat shims and
with plain torch written from the math (same weights): outputs, parameter gradients and the R1
double backward must match, float64 tightly and float32 within 1e-5 relative, on every CPU
backend."""

import functools
import math
from types import SimpleNamespace

import compat_eager as eager
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stylegan_fast import testing
from stylegan_fast.compat import nvlabs, rosinality

BLUR = [1, 3, 3, 1]
N, C, W_DIM, RES = 2, 4, 6, 4  # batch, channels, latent size, input resolution (output 2x)


def _eager_setup_filter(taps):
    t = torch.tensor(taps, dtype=torch.float64)
    f = torch.outer(t, t)
    return f / f.sum()


NV_SHIMS = SimpleNamespace(
    bias_act=nvlabs.bias_act.bias_act,
    setup_filter=nvlabs.upfirdn2d.setup_filter,
    upfirdn2d=nvlabs.upfirdn2d.upfirdn2d,
    upsample2d=nvlabs.upfirdn2d.upsample2d,
    downsample2d=nvlabs.upfirdn2d.downsample2d,
    filter2d=nvlabs.upfirdn2d.filter2d,
)
NV_EAGER = SimpleNamespace(
    bias_act=eager.nvlabs_bias_act,
    setup_filter=_eager_setup_filter,
    upfirdn2d=eager.nvlabs_upfirdn2d,
    upsample2d=eager.nvlabs_upsample2d,
    downsample2d=eager.nvlabs_downsample2d,
    filter2d=eager.nvlabs_filter2d,
)
ROSINALITY_SHIMS = SimpleNamespace(
    upfirdn2d=rosinality.upfirdn2d,
    fused_leaky_relu=rosinality.fused_leaky_relu,
    FusedLeakyReLU=rosinality.FusedLeakyReLU,
)
ROSINALITY_EAGER = SimpleNamespace(
    upfirdn2d=eager.rosinality_upfirdn2d,
    fused_leaky_relu=eager.rosinality_fused_leaky_relu,
    FusedLeakyReLU=eager.RosinalityFusedLeakyReLU,
)


def modulated_conv2d(x, weight, styles, demodulate=True, padding=0):
    """StyleGAN2's per-sample weight modulation (and demodulation) as one grouped conv.
    ``x: [N, I, H, W]``, ``weight: [O, I, k, k]``, ``styles: [N, I]``."""
    batch, in_channels, height, width = x.shape
    w = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    x = x.reshape(1, batch * in_channels, height, width)
    y = F.conv2d(x, w.reshape(-1, in_channels, *weight.shape[2:]), padding=padding, groups=batch)
    return y.reshape(batch, -1, *y.shape[2:])


# --- NVlabs style ------------------------------------------------------------------------------


class NVFullyConnected(nn.Module):
    def __init__(self, ops, in_features, out_features, activation="linear", bias_init=0.0):
        super().__init__()
        self.ops, self.activation = ops, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = 1 / math.sqrt(in_features)

    def forward(self, x):
        x = x.matmul((self.weight * self.weight_gain).t())
        return self.ops.bias_act(x, self.bias, act=self.activation)


class NVSynthesisLayer(nn.Module):
    def __init__(self, ops, in_channels, out_channels, up, conv_clamp=1.5):
        super().__init__()
        self.ops, self.up, self.conv_clamp = ops, up, conv_clamp
        self.affine = NVFullyConnected(ops, W_DIM, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.resample_filter = ops.setup_filter(BLUR)  # a constant, as NVlabs' buffer is

    def forward(self, x, w, noise):
        styles = self.affine(w)
        if self.up:
            x = self.ops.upsample2d(x, self.resample_filter)
        x = modulated_conv2d(x, self.weight, styles, padding=1)
        x = x + noise * self.noise_strength
        gain = math.sqrt(2)
        return self.ops.bias_act(x, self.bias, act="lrelu", gain=gain, clamp=self.conv_clamp)


class NVToRGB(nn.Module):
    def __init__(self, ops, in_channels):
        super().__init__()
        self.ops = ops
        self.affine = NVFullyConnected(ops, W_DIM, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(3, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, w):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return self.ops.bias_act(x, self.bias, clamp=2.0)


class NVConv(nn.Module):
    """Equalised-lr conv, then bias_act (no bias and linear when ``activation`` is None)."""

    def __init__(self, ops, in_channels, out_channels, kernel, activation="lrelu", gain=1.0):
        super().__init__()
        self.ops, self.activation, self.gain = ops, activation, gain
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if activation else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel**2)

    def forward(self, x, stride=1, padding=0):
        x = F.conv2d(x, self.weight * self.weight_gain, stride=stride, padding=padding)
        if self.activation is None:
            return x * self.gain
        act_gain = math.sqrt(2) * self.gain
        return self.ops.bias_act(x, self.bias, act=self.activation, gain=act_gain)


class NVGenerator(nn.Module):
    """A synthesis block: upsampling conv, conv, toRGB added to the upsampled skip image."""

    def __init__(self, ops):
        super().__init__()
        self.ops = ops
        self.conv0 = NVSynthesisLayer(ops, C, C, up=True)
        self.conv1 = NVSynthesisLayer(ops, C, C, up=False)
        self.torgb = NVToRGB(ops, C)
        self.resample_filter = ops.setup_filter(BLUR)

    def forward(self, x, img, ws, noise0, noise1):
        x = self.conv0(x, ws[:, 0], noise0)
        x = self.conv1(x, ws[:, 1], noise1)
        return self.ops.upsample2d(img, self.resample_filter) + self.torgb(x, ws[:, 2])


class NVDiscriminator(nn.Module):
    """fromRGB, a resnet block (blur + strided conv, downsample2d skip), the epilogue."""

    def __init__(self, ops):
        super().__init__()
        self.ops = ops
        self.fromrgb = NVConv(ops, 3, C, 1)
        self.conv0 = NVConv(ops, C, C, 3)
        self.conv1 = NVConv(ops, C, C, 3, gain=math.sqrt(0.5))
        self.skip = NVConv(ops, C, C, 1, activation=None, gain=math.sqrt(0.5))
        self.fc = NVFullyConnected(ops, C * RES * RES, C, activation="lrelu")
        self.out = NVFullyConnected(ops, C, 1)
        self.resample_filter = ops.setup_filter(BLUR)

    def forward(self, img):
        f = self.resample_filter
        x = self.fromrgb(img)
        y = self.skip(self.ops.downsample2d(x, f))
        x = self.conv0(self.ops.filter2d(x, f), padding=1)
        x = self.conv1(self.ops.upfirdn2d(x, f, padding=2), stride=2)
        x = x + y
        return self.out(self.fc(x.flatten(1)))


# --- rosinality style --------------------------------------------------------------------------


def make_kernel(taps):
    k = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum()


class RBlur(nn.Module):
    def __init__(self, ops, taps, pad, upsample_factor=1):
        super().__init__()
        self.ops, self.pad = ops, pad
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor**2)

    def forward(self, x):
        return self.ops.upfirdn2d(x, self.kernel, pad=self.pad)


class RUpsample(nn.Module):
    def __init__(self, ops, taps, factor=2):
        super().__init__()
        self.ops, self.factor = ops, factor
        self.register_buffer("kernel", make_kernel(taps) * factor**2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return self.ops.upfirdn2d(x, self.kernel, up=self.factor, down=1, pad=self.pad)


class REqualLinear(nn.Module):
    def __init__(self, ops, in_dim, out_dim, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.ops, self.activation, self.lr_mul = ops, activation, lr_mul
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_dim], float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)

    def forward(self, x):
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return self.ops.fused_leaky_relu(out, self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class RModulatedConv2d(nn.Module):
    def __init__(self, ops, in_channel, out_channel, kernel, demodulate=True, upsample=False):
        super().__init__()
        self.kernel, self.demodulate, self.upsample = kernel, demodulate, upsample
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel, kernel))
        self.scale = 1 / math.sqrt(in_channel * kernel**2)
        self.modulation = REqualLinear(ops, W_DIM, in_channel, bias_init=1)
        if upsample:
            factor = 2
            p = (len(BLUR) - factor) - (kernel - 1)
            self.blur = RBlur(
                ops, BLUR, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=2
            )

    def forward(self, x, style):
        styles = self.modulation(style)
        weight = self.weight * self.scale
        if not self.upsample:
            return modulated_conv2d(x, weight, styles, self.demodulate, padding=self.kernel // 2)
        # Transposed stride-2 conv with the per-sample weights, then the blur.
        batch, in_channel, height, width = x.shape
        w = weight[None] * styles[:, None, :, None, None]
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
        w = w.transpose(1, 2).reshape(batch * in_channel, -1, self.kernel, self.kernel)
        x = x.reshape(1, batch * in_channel, height, width)
        out = F.conv_transpose2d(x, w, stride=2, groups=batch)
        return self.blur(out.reshape(batch, -1, *out.shape[2:]))


class RStyledConv(nn.Module):
    def __init__(self, ops, in_channel, out_channel, upsample=False):
        super().__init__()
        self.conv = RModulatedConv2d(ops, in_channel, out_channel, 3, upsample=upsample)
        self.noise_weight = nn.Parameter(torch.zeros(1))
        self.activate = ops.FusedLeakyReLU(out_channel)

    def forward(self, x, style, noise):
        return self.activate(self.conv(x, style) + self.noise_weight * noise)


class RGenerator(nn.Module):
    def __init__(self, ops):
        super().__init__()
        self.conv0 = RStyledConv(ops, C, C, upsample=True)
        self.conv1 = RStyledConv(ops, C, C)
        self.to_rgb = RModulatedConv2d(ops, C, 3, 1, demodulate=False)
        self.rgb_bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.upsample = RUpsample(ops, BLUR)

    def forward(self, x, img, ws, noise0, noise1):
        x = self.conv0(x, ws[:, 0], noise0)
        x = self.conv1(x, ws[:, 1], noise1)
        return self.to_rgb(x, ws[:, 2]) + self.rgb_bias + self.upsample(img)


class RConvLayer(nn.Module):
    def __init__(self, ops, in_channel, out_channel, kernel, downsample=False, activate=True):
        super().__init__()
        self.blur = None
        self.stride, self.padding = 1, kernel // 2
        if downsample:
            p = (len(BLUR) - 2) + (kernel - 1)
            self.blur = RBlur(ops, BLUR, pad=((p + 1) // 2, p // 2))
            self.stride, self.padding = 2, 0
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel, kernel))
        self.scale = 1 / math.sqrt(in_channel * kernel**2)
        self.activate = ops.FusedLeakyReLU(out_channel) if activate else None

    def forward(self, x):
        if self.blur is not None:
            x = self.blur(x)
        x = F.conv2d(x, self.weight * self.scale, stride=self.stride, padding=self.padding)
        return x if self.activate is None else self.activate(x)


class RDiscriminator(nn.Module):
    def __init__(self, ops):
        super().__init__()
        self.from_rgb = RConvLayer(ops, 3, C, 1)
        self.conv1 = RConvLayer(ops, C, C, 3)
        self.conv2 = RConvLayer(ops, C, C, 3, downsample=True)
        self.skip = RConvLayer(ops, C, C, 1, downsample=True, activate=False)
        self.fc = REqualLinear(ops, C * RES * RES, C, activation="fused_lrelu")
        self.out = REqualLinear(ops, C, 1)

    def forward(self, img):
        x = self.from_rgb(img)
        x = (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)
        return self.out(self.fc(x.flatten(1)))


STYLES = {
    "nvlabs": (NVGenerator, NVDiscriminator, NV_SHIMS, NV_EAGER),
    "rosinality": (RGenerator, RDiscriminator, ROSINALITY_SHIMS, ROSINALITY_EAGER),
}


# --- the comparison ----------------------------------------------------------------------------


class Model(nn.Module):
    def __init__(self, generator, discriminator):
        super().__init__()
        self.G, self.D = generator, discriminator


def _models(style, seed):
    """The same randomly initialised weights in a shim model and an eager one."""
    generator_cls, discriminator_cls, shims, eager_ops = STYLES[style]
    torch.manual_seed(seed)
    shim_model = Model(generator_cls(shims), discriminator_cls(shims))
    eager_model = Model(generator_cls(eager_ops), discriminator_cls(eager_ops))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in shim_model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)  # nonzero biases and strengths
    eager_model.load_state_dict(shim_model.state_dict())
    return shim_model, eager_model


def _inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return dict(
        x=torch.randn(N, C, RES, RES, generator=g),
        img=torch.randn(N, 3, RES, RES, generator=g),
        ws=torch.randn(N, 3, W_DIM, generator=g),
        noise0=torch.randn(N, 1, 2 * RES, 2 * RES, generator=g),
        noise1=torch.randn(N, 1, 2 * RES, 2 * RES, generator=g),
        real=torch.randn(N, 3, 2 * RES, 2 * RES, generator=g),
        cotangent=torch.randn(N, 3, 2 * RES, 2 * RES, generator=g),
    )


def _run(model, inputs, dtype):
    """Generator output, discriminator score, the parameter and input gradients of a loss on
    both, and the R1 penalty's gradients (double backward through D)."""
    model = model.to(dtype)
    t = {k: v.to(dtype).requires_grad_() for k, v in inputs.items()}
    out = {}
    fake = model.G(t["x"], t["img"], t["ws"], t["noise0"], t["noise1"])
    score = model.D(fake)
    loss = (fake * t["cotangent"]).sum() + score.square().sum()
    wrt = dict(model.named_parameters()) | {k: t[k] for k in ("x", "ws")}
    out["fake"], out["score"] = fake, score
    for name, grad in zip(wrt, torch.autograd.grad(loss, list(wrt.values()))):
        out[f"grad {name}"] = grad
    real_score = model.D(t["real"])
    (real_grad,) = torch.autograd.grad(real_score.sum(), t["real"], create_graph=True)
    penalty = real_grad.square().sum(dim=[1, 2, 3]).mean() + real_score.square().mean()
    out["R1 grad real"] = real_grad
    d_params = dict(model.D.named_parameters()) | {"real": t["real"]}
    for name, grad in zip(d_params, torch.autograd.grad(penalty, list(d_params.values()))):
        out[f"R1 grad {name}"] = grad
    return out


def _backends():
    """Every backend implemented on CPU for either op -> the op(s) it is selected for (an op
    without that backend keeps impl='auto')."""
    ops = ("bias_act", "upfirdn2d")
    implemented = {op: testing.implemented_backends(op, "cpu") for op in ops}
    backends = dict.fromkeys(b for op in ops for b in implemented[op])
    return {b: [op for op in ops if b in implemented[op]] for b in backends}


BACKENDS = _backends()
WEIGHTS_SEED, INPUTS_SEED = 7, 11


@functools.cache
def _expected(style):
    """The eager model's results in float64 (computed once per style: the costly part)."""
    _, eager_model = _models(style, WEIGHTS_SEED)
    results = _run(eager_model, _inputs(INPUTS_SEED), torch.float64)
    return {name: t.detach() for name, t in results.items()}


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("style", list(STYLES))
def test_gan_block_matches_eager(style, dtype, backend, monkeypatch):
    for op in BACKENDS[backend]:
        testing.require_backend(op, backend, "cpu")
        monkeypatch.setenv(f"STYLEGAN_FAST_IMPL_{op.upper()}", backend)
    shim_model, _ = _models(style, WEIGHTS_SEED)
    got = _run(shim_model, _inputs(INPUTS_SEED), dtype)
    want = _expected(style)
    assert list(got) == list(want)
    assert got["fake"].shape == (N, 3, 2 * RES, 2 * RES)
    for name in want:
        assert want[name].abs().max() > 0, f"{name} is zero: the comparison would be vacuous"
        if dtype == torch.float64:
            testing.assert_close(got[name], want[name], what=f"{style} {name}")
        else:
            error = testing.relative_error(got[name], want[name])
            assert error <= 1e-5, f"{style} {name}: relative error {error:.2e} (float32)"
