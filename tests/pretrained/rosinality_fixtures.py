"""rosinality ``style-based-gan-pytorch`` state dicts built from the naming rules (seeded
random tensors of their shapes), and an independent float64 forward of their generator and
discriminator written from their math with plain torch ops (not from our models)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Their published architecture (Generator/Discriminator in their model.py): 4² .. 1024².
OFFICIAL_CHANNELS = (512, 512, 512, 512, 256, 128, 64, 32, 16)
# Their Blur's buffers (generator: after the up-sampling conv; discriminator: conv2.0).
BLUR_SUFFIXES = tuple(
    f"{layer}.{buffer}"
    for layer in ("conv1.1", "conv1.2", "conv2.0")
    for buffer in ("weight", "weight_flip")
)


def generator_shapes(channels, *, width=512, n_mlp=8, img_channels=3, fused_from=128) -> dict:
    """Names and shapes of ``StyledGenerator.state_dict()``; ``channels[i]``: block ``i``
    (resolution ``4 * 2 ** i``)."""
    shapes = {}
    for k in range(n_mlp):
        shapes[f"style.{2 * k + 1}.linear.weight_orig"] = (width, width)
        shapes[f"style.{2 * k + 1}.linear.bias"] = (width,)
    for i, c in enumerate(channels):
        p = f"generator.progression.{i}"
        if i == 0:
            shapes[f"{p}.conv1.input"] = (1, c, 4, 4)
        elif 4 * 2**i >= fused_from:
            shapes[f"{p}.conv1.0.weight"] = (channels[i - 1], c, 3, 3)
            shapes[f"{p}.conv1.0.bias"] = (c,)
            shapes[f"{p}.conv1.1.weight"] = shapes[f"{p}.conv1.1.weight_flip"] = (c, 1, 3, 3)
        else:
            shapes[f"{p}.conv1.1.conv.weight_orig"] = (c, channels[i - 1], 3, 3)
            shapes[f"{p}.conv1.1.conv.bias"] = (c,)
            shapes[f"{p}.conv1.2.weight"] = shapes[f"{p}.conv1.2.weight_flip"] = (c, 1, 3, 3)
        for k in (1, 2):
            shapes[f"{p}.noise{k}.weight_orig"] = (1, c, 1, 1)
            shapes[f"{p}.adain{k}.style.linear.weight_orig"] = (2 * c, width)
            shapes[f"{p}.adain{k}.style.linear.bias"] = (2 * c,)
        shapes[f"{p}.conv2.conv.weight_orig"] = (c, c, 3, 3)
        shapes[f"{p}.conv2.conv.bias"] = (c,)
    for i, c in enumerate(channels):
        shapes[f"generator.to_rgb.{i}.conv.weight_orig"] = (img_channels, c, 1, 1)
        shapes[f"generator.to_rgb.{i}.conv.bias"] = (img_channels,)
    return shapes


def discriminator_shapes(channels, *, img_channels=3, fused_from=128, activate=True) -> dict:
    """Names and shapes of their ``Discriminator.state_dict()``; ``channels[L]``: level ``L``
    (resolution ``4 * 2 ** L``); block ``j`` works at level ``n - 1 - j``."""
    n = len(channels)
    shapes = {}
    for j in range(n - 1):
        level = n - 1 - j
        c_in, c_out = channels[level], channels[level - 1]
        p = f"progression.{j}"
        shapes[f"{p}.conv1.0.conv.weight_orig"] = (c_out, c_in, 3, 3)
        shapes[f"{p}.conv1.0.conv.bias"] = (c_out,)
        shapes[f"{p}.conv2.0.weight"] = shapes[f"{p}.conv2.0.weight_flip"] = (c_out, 1, 3, 3)
        conv = f"{p}.conv2.1" if 4 * 2**level >= fused_from else f"{p}.conv2.1.conv"
        suffix = "weight" if 4 * 2**level >= fused_from else "weight_orig"
        shapes[f"{conv}.{suffix}"] = (c_out, c_out, 3, 3)
        shapes[f"{conv}.bias"] = (c_out,)
    c = channels[0]
    shapes[f"progression.{n - 1}.conv1.0.conv.weight_orig"] = (c, c + 1, 3, 3)
    shapes[f"progression.{n - 1}.conv1.0.conv.bias"] = (c,)
    shapes[f"progression.{n - 1}.conv2.0.conv.weight_orig"] = (c, c, 4, 4)
    shapes[f"progression.{n - 1}.conv2.0.conv.bias"] = (c,)
    for j in range(n):
        conv = f"from_rgb.{j}.0.conv" if activate else f"from_rgb.{j}.conv"
        shapes[f"{conv}.weight_orig"] = (channels[n - 1 - j], img_channels, 1, 1)
        shapes[f"{conv}.bias"] = (channels[n - 1 - j],)
    shapes["linear.linear.weight_orig"] = (1, c)
    shapes["linear.linear.bias"] = (1,)
    return shapes


def random_state(shapes: dict, seed: int, *, up_bias: bool = False) -> dict:
    """Seeded tensors for ``shapes``: equalized weights N(0, 1) (their init; the style
    affines and to_rgb 0.25 of that), biases and noise strengths small, style scales near 1,
    blur buffers their [1, 2, 1] kernel; the up-sampling convolutions' biases are zero unless
    ``up_bias``."""
    generator = torch.Generator().manual_seed(seed)
    blur = torch.outer(torch.tensor([1.0, 2, 1]), torch.tensor([1.0, 2, 1])) / 16
    state = {}
    for name, shape in shapes.items():
        if name.endswith(BLUR_SUFFIXES):
            state[name] = blur.expand(shape).clone()
            continue
        value = torch.randn(shape, generator=generator)
        if name.endswith("bias"):
            value = 0.2 * value
            up = ".conv1.0.bias" in name or ".conv1.1.conv.bias" in name
            if up and name.startswith("generator.") and not up_bias:
                value.zero_()
            if ".adain" in name:
                value[: shape[0] // 2] += 1
        elif ".noise" in name:
            value = 0.5 * value
        elif ".adain" in name or ".to_rgb." in name:
            value = 0.25 * value  # styles near 1 and images near [-1, 1], as trained ones are
        state[name] = value
    return state


def _runtime(weight):
    fan_in = weight.shape[1] * weight[0][0].numel()
    return weight.double() * math.sqrt(2 / fan_in)


def _conv(x, state, name, suffix="weight_orig", **options):
    """Their equalized convolution ``name``: runtime weight and bias."""
    weight = _runtime(state[f"{name}.{suffix}"])
    return F.conv2d(x, weight, state[f"{name}.bias"].double(), **options)


def _blur(x):
    kernel = torch.outer(torch.tensor([1.0, 2, 1]), torch.tensor([1.0, 2, 1])).double() / 16
    kernel = kernel.expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, kernel, padding=1, groups=x.shape[1])


def _pad_sum(weight):
    w = F.pad(weight, [1, 1, 1, 1])
    return (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) / 4


def _adain(x, style, state, name):
    s = style @ _runtime(state[f"{name}.weight_orig"]).T + state[f"{name}.bias"].double()
    gamma, beta = s.chunk(2, dim=1)
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
    x = (x - mean) / torch.sqrt(var + 1e-5)  # torch.nn.InstanceNorm2d's default eps
    return gamma[:, :, None, None] * x + beta[:, :, None, None]


def mapping_forward(state, z, n_mlp):
    x = z.double()
    x = x / torch.sqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
    for k in range(n_mlp):
        name = f"style.{2 * k + 1}.linear"
        weight, bias = _runtime(state[f"{name}.weight_orig"]), state[f"{name}.bias"].double()
        x = F.leaky_relu(x @ weight.T + bias, 0.2)
    return x


def generator_forward(state, z, noise, step, *, n_mlp, mean_style=None, psi=1.0):
    """Their ``StyledGenerator(z, noise, step)`` at full fade-in: ``noise[i]`` ``[N, 1, R, R]``
    is shared by both layers of block ``i``; truncation ``mean + psi * (style - mean)``."""
    style = mapping_forward(state, z, n_mlp)
    if mean_style is not None:
        style = mean_style.double() + psi * (style - mean_style.double())
    x = state["generator.progression.0.conv1.input"].double().repeat(z.shape[0], 1, 1, 1)
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    for i in range(step + 1):
        p = f"generator.progression.{i}"
        if i > 0:
            if f"{p}.conv1.0.weight" in state:
                weight = state[f"{p}.conv1.0.weight"].double()  # [in, out, 3, 3]
                kernel = _pad_sum(weight * math.sqrt(2 / (weight.shape[0] * 9)))
                bias = state[f"{p}.conv1.0.bias"].double()
                x = F.conv_transpose2d(x, kernel, bias, stride=2, padding=1)
            else:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = _conv(x, state, f"{p}.conv1.1.conv", padding=1)
            x = _blur(x)
        x = x + _runtime(state[f"{p}.noise1.weight_orig"]) * noise[i].double()
        x = _adain(lrelu(x), style, state, f"{p}.adain1.style.linear")
        x = _conv(x, state, f"{p}.conv2.conv", padding=1)
        x = x + _runtime(state[f"{p}.noise2.weight_orig"]) * noise[i].double()
        x = _adain(lrelu(x), style, state, f"{p}.adain2.style.linear")
    rgb = f"generator.to_rgb.{step}.conv"
    return F.conv2d(x, _runtime(state[f"{rgb}.weight_orig"]), state[f"{rgb}.bias"].double())


def discriminator_forward(state, img, step, n_blocks):
    """Their ``Discriminator(img, step)`` at full fade-in (from_rgb with leaky ReLU)."""
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    rgb = f"from_rgb.{n_blocks - 1 - step}.0.conv"
    x = lrelu(_conv(img.double(), state, rgb))
    for level in range(step, 0, -1):
        p = f"progression.{n_blocks - 1 - level}"
        x = lrelu(_conv(x, state, f"{p}.conv1.0.conv", padding=1))
        x = _blur(x)
        if f"{p}.conv2.1.weight" in state:
            kernel = _pad_sum(_runtime(state[f"{p}.conv2.1.weight"]))
            x = F.conv2d(x, kernel, state[f"{p}.conv2.1.bias"].double(), stride=2, padding=1)
        else:
            x = _conv(x, state, f"{p}.conv2.1.conv", padding=1)
            x = F.avg_pool2d(x, 2)
        x = lrelu(x)
    std = torch.sqrt(x.var(0, unbiased=False) + 1e-8).mean()  # one group: the whole batch
    x = torch.cat([x, std.expand(x.shape[0], 1, 4, 4)], dim=1)
    p = f"progression.{n_blocks - 1}"
    x = lrelu(_conv(x, state, f"{p}.conv1.0.conv", padding=1))
    x = lrelu(_conv(x, state, f"{p}.conv2.0.conv"))
    x = x.flatten(1)
    return x @ _runtime(state["linear.linear.weight_orig"]).T + state["linear.linear.bias"].double()
