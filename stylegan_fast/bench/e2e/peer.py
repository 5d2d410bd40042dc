"""The eager peer: StyleGAN1 written the plain PyTorch way, as popular ports do.

Written from the paper (Karras et al. 2019) and PGGAN (Karras et al. 2018), not from any
port's code: equalized-lr dense/conv layers (weights scaled at run time), AdaIN through
``F.instance_norm``, noise as ``x + strength * noise``, the ``[1, 2, 1]`` blur as a depthwise
``F.conv2d``, nearest ``F.interpolate`` + conv (or the equivalent transposed conv from 128²,
"fused_scale"), ``F.avg_pool2d`` down-sampling. Nothing from ``stylegan_fast.ops`` or
``stylegan_fast.nn`` is used: every element-wise step is its own kernel, as in the ports the
issue's targets compare against.

The architecture, channel counts and parameter names are those of
:class:`stylegan_fast.models.Generator` / :class:`Discriminator` for the same config, so
``peer.load_state_dict(ours.state_dict(), strict=False)`` (only the ``lod`` buffers differ)
gives the same function; the interface is the subset the train package's losses use
(``mapping(z, c, update_w_avg=...)``, ``synthesis(w, noise_mode)``, ``num_ws``, ``z_dim``).
Unconditional and fixed-resolution only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...models.config import DiscriminatorConfig, GeneratorConfig

_SLOPE = 0.2
_SQRT2 = math.sqrt(2)


def _check_supported(config) -> None:
    if config.c_dim or config.progressive:
        raise ValueError(
            "the peer model is unconditional and fixed-resolution; got "
            f"c_dim={config.c_dim}, progressive={config.progressive}"
        )


class PeerLinear(torch.nn.Module):
    """``x @ (weight * gain / sqrt(fan_in) * lr_mul).T + bias * lr_mul``."""

    def __init__(self, fan_in: int, fan_out: int, gain: float, lr_mul: float = 1.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(fan_out, fan_in) / lr_mul)
        self.bias = torch.nn.Parameter(torch.zeros(fan_out))
        self.scale, self.lr_mul = gain / math.sqrt(fan_in) * lr_mul, lr_mul

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PeerConv(torch.nn.Module):
    """Equalized-lr ``k x k`` convolution, ``x: [N, in, H, W]``; ``up=True`` upsamples x2 first
    (nearest + conv, or one transposed conv when ``fused``), ``down=True`` halves after
    (conv + 2x2 average, or one stride-2 conv when ``fused``)."""

    def __init__(self, cin, cout, k, *, gain=_SQRT2, bias=True, up=False, down=False, fused=False):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = torch.nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale = gain / math.sqrt(cin * k * k)
        self.up, self.down, self.fused, self.pad = up, down, fused, k // 2

    @staticmethod
    def _four_tap_sum(w):
        # Nearest x2 followed by a k x k conv touches each input pixel with the sums of 2x2
        # neighbouring taps; a (k+1) x (k+1) kernel of those sums does it in one conv.
        p = F.pad(w, [1, 1, 1, 1])
        return p[:, :, 1:, 1:] + p[:, :, :-1, 1:] + p[:, :, 1:, :-1] + p[:, :, :-1, :-1]

    def forward(self, x):
        w = self.weight * self.scale
        if self.up and self.fused:
            kernel = self._four_tap_sum(w).flip([2, 3]).transpose(0, 1)
            x = F.conv_transpose2d(x, kernel, stride=2, padding=self.pad)
        elif self.down and self.fused:
            x = F.conv2d(x, self._four_tap_sum(w) * 0.25, stride=2, padding=self.pad)
        else:
            if self.up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, w, padding=self.pad)
            if self.down:
                x = F.avg_pool2d(x, 2)
        if self.bias is not None:
            x = x + self.bias.view(1, -1, 1, 1)
        return x


class PeerBlur(torch.nn.Module):
    """Depthwise ``F.conv2d`` with the normalised outer product of ``taps``."""

    def __init__(self, taps):
        super().__init__()
        f = torch.as_tensor(taps, dtype=torch.float32)
        f = f[:, None] * f[None, :]
        self.register_buffer("kernel", (f / f.sum())[None, None], persistent=False)

    def forward(self, x):
        c = x.shape[1]
        k = self.kernel.to(x.dtype).expand(c, 1, -1, -1)
        return F.conv2d(x, k, padding=self.kernel.shape[-1] // 2, groups=c)


class PeerStyle(torch.nn.Module):
    def __init__(self, w_dim, channels):
        super().__init__()
        self.affine = PeerLinear(w_dim, 2 * channels, gain=1.0)


class PeerEpilogue(torch.nn.Module):
    """noise -> bias -> leaky ReLU -> ``F.instance_norm`` -> ``(1 + s) * x + b`` from ``w``."""

    def __init__(self, channels, w_dim):
        super().__init__()
        self.noise_strength = torch.nn.Parameter(torch.zeros(channels))
        self.bias = torch.nn.Parameter(torch.zeros(channels))
        self.style = PeerStyle(w_dim, channels)

    def forward(self, x, w, noise):
        if noise is not None:
            x = x + self.noise_strength.view(1, -1, 1, 1) * noise
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), _SLOPE)
        x = F.instance_norm(x, eps=1e-8)
        scale, shift = self.style.affine(w).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * (scale + 1) + shift


class PeerSynthesisLayer(torch.nn.Module):
    def __init__(self, cin, cout, w_dim, resolution, *, up, fused, taps):
        super().__init__()
        self.conv = None if cin is None else PeerConv(cin, cout, 3, bias=False, up=up, fused=fused)
        self.blur = PeerBlur(taps) if up else None
        self.epilogue = PeerEpilogue(cout, w_dim)
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x, w, noise_mode):
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = self.blur(x)
        noise = None
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device)
            noise = noise.to(x.dtype)
        elif noise_mode == "const":
            noise = self.noise_const.to(x.dtype)
        return self.epilogue(x, w, noise)


class PeerSynthesisBlock(torch.nn.Module):
    def __init__(self, config: GeneratorConfig, resolution: int):
        super().__init__()
        c, taps, w_dim = config.channels(resolution), config.blur_filter, config.w_dim
        fused = config.fused_at(resolution)
        if resolution == 4:
            self.const = torch.nn.Parameter(torch.ones(1, c, 4, 4))
            self.layer0 = PeerSynthesisLayer(None, c, w_dim, 4, up=False, fused=False, taps=taps)
        else:
            cin = config.channels(resolution // 2)
            self.layer0 = PeerSynthesisLayer(
                cin, c, w_dim, resolution, up=True, fused=fused, taps=taps
            )
        self.layer1 = PeerSynthesisLayer(c, c, w_dim, resolution, up=False, fused=False, taps=taps)
        if resolution == config.resolution:
            self.torgb = PeerConv(c, config.img_channels, 1, gain=1.0)


class PeerSynthesis(torch.nn.Module):
    """``w: [N, num_ws, w_dim]`` -> ``[N, img_channels, R, R]``."""

    lod_floor = 0  # fixed resolution: every block runs (read by models.style_mix)

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            PeerSynthesisBlock(config, 2**k) for k in range(2, config.resolution_log2 + 1)
        )

    def forward(self, w, noise_mode="random"):
        x = self.blocks[0].const.to(w.dtype).expand(w.shape[0], -1, -1, -1)
        if self.blocks[0].const.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        for i, block in enumerate(self.blocks):
            x = block.layer0(x, w[:, 2 * i], noise_mode)
            x = block.layer1(x, w[:, 2 * i + 1], noise_mode)
        return self.blocks[-1].torgb(x)


class PeerMapping(torch.nn.Module):
    """``z: [N, z_dim]`` -> pixel norm -> dense + leaky ReLU (lr x0.01) -> ``w``, broadcast to
    ``[N, num_ws, w_dim]``."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        widths = [config.z_dim] + [config.mapping_dim] * (config.mapping_layers - 1)
        widths.append(config.w_dim)
        self.layers = torch.nn.ModuleList(
            PeerLinear(a, b, gain=_SQRT2, lr_mul=config.mapping_lr_mul)
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.num_ws, self.beta = config.num_ws, config.w_avg_beta
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(self, z, c=None, update_w_avg=False):
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = F.leaky_relu(layer(x), _SLOPE)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().float().mean(0).lerp(self.w_avg, self.beta))
        return x.unsqueeze(1).repeat(1, self.num_ws, 1)


class PeerGenerator(torch.nn.Module):
    """``G(z: [N, z_dim]) -> [N, img_channels, R, R]`` (``noise_mode``: random/const/none)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        _check_supported(config)
        self.z_dim, self.num_ws, self.resolution = config.z_dim, config.num_ws, config.resolution
        self.mapping = PeerMapping(config)
        self.synthesis = PeerSynthesis(config)

    def forward(self, z, c=None, noise_mode="random"):
        return self.synthesis(self.mapping(z), noise_mode)


class PeerDiscriminatorBlock(torch.nn.Module):
    def __init__(self, config: DiscriminatorConfig, resolution: int):
        super().__init__()
        c, cout = config.channels(resolution), config.channels(resolution // 2)
        self.conv0 = PeerConv(c, c, 3)
        self.blur = PeerBlur(config.blur_filter)
        self.conv1 = PeerConv(c, cout, 3, down=True, fused=config.fused_at(resolution))

    def forward(self, x):
        x = F.leaky_relu(self.conv0(x), _SLOPE)
        return F.leaky_relu(self.conv1(self.blur(x)), _SLOPE)


class PeerDiscriminatorEpilogue(torch.nn.Module):
    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        c = config.channels(4)
        self.group = config.mbstd_group_size
        self.features = config.mbstd_num_features if self.group > 1 else 0
        self.conv = PeerConv(c + self.features, c, 3)
        self.fc = PeerLinear(16 * c, config.nf(0), gain=_SQRT2)
        self.out = PeerLinear(config.nf(0), 1, gain=1.0)

    def minibatch_stddev(self, x):
        # Sample n joins group n % (N / G); std over each group, averaged per feature split.
        n, c, h, w = x.shape
        g, f = min(self.group, n), self.features
        y = x.float().reshape(g, n // g, f, c // f, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(2, 3, 4))
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)

    def forward(self, x):
        if self.features:
            x = self.minibatch_stddev(x)
        x = F.leaky_relu(self.conv(x), _SLOPE)
        x = F.leaky_relu(self.fc(x.flatten(1)), _SLOPE)
        return self.out(x)


class PeerDiscriminator(torch.nn.Module):
    """``D(img: [N, img_channels, R, R], c=None) -> logits [N, 1]``."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        _check_supported(config)
        resolutions = [2**k for k in range(2, config.resolution_log2 + 1)]
        top = config.channels(config.resolution)
        self.fromrgb = torch.nn.ModuleList(torch.nn.Identity() for _ in resolutions[:-1]).append(
            PeerConv(config.img_channels, top, 1)
        )
        self.blocks = torch.nn.ModuleList(
            [PeerDiscriminatorEpilogue(config)]
            + [PeerDiscriminatorBlock(config, r) for r in resolutions[1:]]
        )

    def forward(self, img, c=None):
        x = F.leaky_relu(self.fromrgb[-1](img), _SLOPE)
        for block in reversed(self.blocks[1:]):
            x = block(x)
        return self.blocks[0](x)
