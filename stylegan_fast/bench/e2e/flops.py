"""Model FLOPs counted from the layer shapes of a config (per image, 2 FLOPs per multiply-add).

Counted: every convolution as it runs (3x3 convs; from 128² the fused up/down-sampling as
one (k+1)x(k+1) transposed / stride-2 conv on the input grid; 1x1 toRGB/fromRGB), the
``[1, 2, 1]`` blur as a depthwise 3x3 conv (how a plain PyTorch port computes it), and every
dense layer (mapping, style affines, the discriminator's head). Not counted: element-wise
work (noise, bias, activation, instance norm, style scaling, nearest/box resampling,
minibatch stddev): it is memory-bound and has no multiply-add a matrix unit could run.

A training step (:func:`train_step_flops`) composes the forward counts with the usual
convention: a backward pass costs twice its forward (gradients of the input and of the
weights), and the R1 penalty costs six D forwards (forward, the input gradient with its
graph kept, then the backward of both). See the function for the exact sum.
"""

from __future__ import annotations

import dataclasses

from ...models.config import DiscriminatorConfig, GeneratorConfig


@dataclasses.dataclass(frozen=True)
class Layer:
    """One counted layer: ``macs`` multiply-adds per image."""

    name: str
    macs: int


def _conv(name, cin, cout, k, out_hw, groups=1) -> Layer:
    return Layer(name, out_hw * out_hw * k * k * (cin // groups) * cout)


def _resample_conv(name, cin, cout, in_res, *, up: bool, fused: bool) -> Layer:
    """3x3 conv with x2 up (``in_res`` -> 2 in_res) or down (``in_res`` -> in_res / 2)."""
    if fused:
        # One 4x4 conv evaluated on the input grid (transposed) or the output grid (stride 2).
        grid = in_res if up else in_res // 2
        return Layer(name, grid * grid * 16 * cin * cout)
    out = 2 * in_res if up else in_res  # the conv runs at the full resolution
    return _conv(name, cin, cout, 3, out)


def generator_layers(config: GeneratorConfig) -> list[Layer]:
    """The counted layers of one image's generator forward (fixed resolution)."""
    g = config
    layers = []
    width = g.z_dim * (2 if g.c_dim else 1)
    for i in range(g.mapping_layers):
        out = g.w_dim if i == g.mapping_layers - 1 else g.mapping_dim
        layers.append(Layer(f"mapping.{i}", width * out))
        width = out
    if g.c_dim:
        layers.append(Layer("mapping.embed", g.c_dim * g.z_dim))
    taps = len(g.blur_filter)
    for k in range(2, g.resolution_log2 + 1):
        r = 2**k
        c = g.channels(r)
        layers.append(Layer(f"{r}.layer0.style", g.w_dim * 2 * c))
        layers.append(Layer(f"{r}.layer1.style", g.w_dim * 2 * c))
        if r > 4:
            cin = g.channels(r // 2)
            fused = g.fused_at(r)
            layers.append(_resample_conv(f"{r}.layer0.conv", cin, c, r // 2, up=True, fused=fused))
            layers.append(_conv(f"{r}.blur", c, c, taps, r, groups=c))
        layers.append(_conv(f"{r}.layer1.conv", c, c, 3, r))
    layers.append(_conv("torgb", g.channels(g.resolution), g.img_channels, 1, g.resolution))
    return layers


def discriminator_layers(config: DiscriminatorConfig) -> list[Layer]:
    """The counted layers of one image's discriminator forward (fixed resolution)."""
    d = config
    taps = len(d.blur_filter)
    layers = [_conv("fromrgb", d.img_channels, d.channels(d.resolution), 1, d.resolution)]
    for k in range(d.resolution_log2, 2, -1):
        r = 2**k
        c, cout = d.channels(r), d.channels(r // 2)
        layers.append(_conv(f"{r}.conv0", c, c, 3, r))
        layers.append(_conv(f"{r}.blur", c, c, taps, r, groups=c))
        layers.append(_resample_conv(f"{r}.conv1", c, cout, r, up=False, fused=d.fused_at(r)))
    c = d.channels(4)
    extra = d.mbstd_num_features if d.mbstd_group_size > 1 else 0
    layers.append(_conv("4.conv", c + extra, c, 3, 4))
    layers.append(Layer("4.fc", 16 * c * d.nf(0)))
    layers.append(Layer("4.out", d.nf(0) * max(d.c_dim, 1)))
    return layers


def generator_flops(config: GeneratorConfig) -> int:
    """FLOPs of one image's generator forward: ``2 * sum(MACs)``."""
    return 2 * sum(layer.macs for layer in generator_layers(config))


def discriminator_flops(config: DiscriminatorConfig) -> int:
    """FLOPs of one image's discriminator forward."""
    return 2 * sum(layer.macs for layer in discriminator_layers(config))


def train_step_flops(g_config, d_config, r1_every: int = 1) -> float:
    """FLOPs per image of one training step (``G`` = generator forward, ``D`` = discriminator
    forward, per image; backward = 2 x forward):

    - D main: ``G`` (fakes, no grad) + ``3 D`` on fakes + ``3 D`` on reals,
    - R1 on reals: ``6 D``, every ``r1_every`` steps (amortised: ``6 D / r1_every``),
    - G main: ``3 G`` + ``3 D`` (the gradient flows through D to the fakes).

    Total ``4 G + 9 D + 6 D / r1_every``. The mapping network's second pass for style mixing
    (a few MFLOP) is left out.
    """
    if isinstance(r1_every, bool) or not isinstance(r1_every, int) or r1_every < 0:
        raise ValueError(f"r1_every must be an int >= 0 (0: no R1), got {r1_every!r}")
    g, d = generator_flops(g_config), discriminator_flops(d_config)
    r1 = 6 * d / r1_every if r1_every else 0
    return 4 * g + 9 * d + r1
