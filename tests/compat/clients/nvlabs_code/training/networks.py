"""A tiny StyleGAN2 in NVlabs' style (their import lines, layer names and switches), written
from the StyleGAN2 math: mapping network, one synthesis block (4² -> 8²) with a constant input,
one residual discriminator block and the epilogue."""

import math

import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample
from torch_utils.ops import fma
from torch_utils.ops import upfirdn2d


def normalize_2nd_moment(x, eps=1e-8):
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, resample_filter=None,
                     demodulate=True, fused_modconv=True):  # fmt: skip
    """StyleGAN2's weight modulation and demodulation: ``x: [N, I, H, W]``,
    ``weight: [O, I, k, k]``, ``styles: [N, I]``. Fused: one grouped convolution with per-sample
    weights; else the styles scale the activations and the demodulation the output."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(styles, [batch_size, in_channels])
    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)  # [NOIkk]
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None  # [NO]
    if not fused_modconv:
        x = x * styles.reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x, weight, f=resample_filter, up=up, padding=padding)
        if demodulate and noise is not None:
            return fma.fma(x, dcoefs.reshape(batch_size, -1, 1, 1), noise)
        if demodulate:
            x = x * dcoefs.reshape(batch_size, -1, 1, 1)
        return x if noise is None else x + noise
    if demodulate:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x, w, f=resample_filter, up=up, padding=padding,
                                        groups=batch_size)  # fmt: skip
    x = x.reshape(batch_size, -1, *x.shape[2:])
    return x if noise is None else x + noise


@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_features, out_features, activation="linear", lr_multiplier=1,
                 bias_init=0):  # fmt: skip
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act.bias_act(x.matmul(w.t()), b, act=self.activation)


@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(self, z_dim, w_dim, num_ws, num_layers=2, lr_multiplier=0.01):
        super().__init__()
        self.num_ws, self.num_layers = num_ws, num_layers
        features = [z_dim] + [w_dim] * num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu",
                                        lr_multiplier=lr_multiplier)  # fmt: skip
            setattr(self, f"fc{idx}", layer)

    def forward(self, z):
        x = normalize_2nd_moment(z)
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        return x.unsqueeze(1).repeat([1, self.num_ws, 1])


@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, resolution, up=1,
                 resample_filter=(1, 3, 3, 1), conv_clamp=256, activation="lrelu"):  # fmt: skip
        super().__init__()
        self.up, self.conv_clamp, self.activation = up, conv_clamp, activation
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(list(resample_filter)))
        self.act_gain = bias_act.activation_funcs[activation].def_gain
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, fused_modconv=True, gain=1):
        styles = self.affine(w)
        noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=1,
                             resample_filter=self.resample_filter,
                             fused_modconv=fused_modconv)  # fmt: skip
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias, act=self.activation, gain=act_gain, clamp=act_clamp)


@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, conv_clamp=None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False,
                             fused_modconv=fused_modconv)  # fmt: skip
        return bias_act.bias_act(x, self.bias, clamp=self.conv_clamp)


@persistence.persistent_class
class Generator(torch.nn.Module):
    """Mapping, then a 4² constant through an upsampling block to an 8² image (the 4² image
    upsampled, plus the block's toRGB)."""

    def __init__(self, z_dim=8, w_dim=8, channels=4, img_channels=3):
        super().__init__()
        self.z_dim = z_dim
        self.mapping = MappingNetwork(z_dim, w_dim, num_ws=4)
        self.const = torch.nn.Parameter(torch.randn([channels, 4, 4]))
        self.torgb4 = ToRGBLayer(channels, img_channels, w_dim, conv_clamp=256)
        self.conv0 = SynthesisLayer(channels, channels, w_dim, resolution=8, up=2)
        self.conv1 = SynthesisLayer(channels, channels, w_dim, resolution=8)
        self.torgb8 = ToRGBLayer(channels, img_channels, w_dim, conv_clamp=256)
        self.register_buffer("resample_filter", upfirdn2d.setup_filter([1, 3, 3, 1]))

    def synthesis(self, ws, fused_modconv=None):
        if fused_modconv is None:
            # Training modulates activations, not weights: no_weight_gradients() (path
            # length) would otherwise cut the styles' path through the conv weights.
            fused_modconv = not self.training
        x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        img = self.torgb4(x, ws[:, 0], fused_modconv=fused_modconv)
        x = self.conv0(x, ws[:, 1], fused_modconv=fused_modconv)
        x = self.conv1(x, ws[:, 2], fused_modconv=fused_modconv)
        img = upfirdn2d.upsample2d(img, self.resample_filter)
        return img + self.torgb8(x, ws[:, 3], fused_modconv=fused_modconv)

    def forward(self, z, fused_modconv=None):
        return self.synthesis(self.mapping(z), fused_modconv=fused_modconv)


@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear",
                 down=1, resample_filter=(1, 3, 3, 1), conv_clamp=None):  # fmt: skip
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.register_buffer("resample_filter", upfirdn2d.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = bias_act.activation_funcs[activation].def_gain
        shape = [out_channels, in_channels, kernel_size, kernel_size]
        self.weight = torch.nn.Parameter(torch.randn(shape))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x, gain=1):
        w = self.weight * self.weight_gain
        x = conv2d_resample.conv2d_resample(x=x, w=w, f=self.resample_filter, down=self.down,
                                            padding=self.padding)  # fmt: skip
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain,
                                 clamp=act_clamp)  # fmt: skip


@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """fromRGB, a residual block 8² -> 4², then the epilogue (conv, fc, out)."""

    def __init__(self, channels=4, img_channels=3):
        super().__init__()
        self.fromrgb = Conv2dLayer(img_channels, channels, 1, activation="lrelu")
        self.conv0 = Conv2dLayer(channels, channels, 3, activation="lrelu", conv_clamp=256)
        self.conv1 = Conv2dLayer(channels, channels, 3, activation="lrelu", down=2,
                                 conv_clamp=256)  # fmt: skip
        self.skip = Conv2dLayer(channels, channels, 1, bias=False, down=2)
        self.conv = Conv2dLayer(channels, channels, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(channels * 16, channels, activation="lrelu")
        self.out = FullyConnectedLayer(channels, 1)

    def forward(self, img):
        x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        x = self.conv(y + x)
        return self.out(self.fc(x.flatten(1)))
