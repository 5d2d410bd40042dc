"""The synthesis network g: per-layer styles w -> image."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..nn import Blur, EqualConv2d, FusedModule, LayerEpilogue, Upsample2d
from .config import GeneratorConfig
from .progressive import LodMixin

NOISE_MODES = ("random", "const", "none")


def noise_seed(seed: int) -> int:
    """The seed of the random synthesis noise that goes with latent seed ``seed`` (for the
    generation tools and the metrics): offset by 2**32, so noise and latent draws are
    independent streams whatever the seed in ``[0, 2**32)``."""
    return int(seed) + 2**32


class SynthesisLayer(FusedModule):
    """One StyleGAN1 synthesis layer: [x2 upsample +] 3x3 conv [+ blur] + layer epilogue.

    The first layer of the 4x4 block has no convolution (it styles the learned constant).
    Upsampling is nearest-neighbour followed by the convolution, or the equivalent transposed
    convolution when ``fused`` (StyleGAN1's "fused_scale"); the ``[1, 2, 1]`` blur follows
    the convolution. Holds ``noise_const [1, 1, R, R]``, this layer's fixed noise image.
    """

    def __init__(
        self,
        in_channels: int | None,
        out_channels: int,
        w_dim: int,
        resolution: int,
        *,
        up: bool,
        fused: bool,
        blur_filter: Sequence[float],
        use_noise: bool,
        norm_eps: float = 1e-8,
        impl: str = "auto",
    ):
        super().__init__(impl)
        self.resolution = resolution
        self.conv = None
        self.blur = None
        if in_channels is not None:
            self.conv = EqualConv2d(
                in_channels,
                out_channels,
                3,
                bias=False,
                gain=math.sqrt(2),
                up=2 if up else 1,
                fused_resample=fused,
                impl=impl,
            )
            if up:
                self.blur = Blur(blur_filter, impl=impl)
        # The conv's weights carry lrelu's sqrt(2) (StyleGAN1), so the epilogue's gain is 1.
        self.epilogue = LayerEpilogue(
            out_channels, w_dim, use_noise=use_noise, act_gain=1.0, eps=norm_eps, impl=impl
        )
        if use_noise:
            self.register_buffer("noise_const", torch.randn([1, 1, resolution, resolution]))
        else:
            self.noise_const = None

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``x: [N, C_in, R/2, R/2]`` (or ``[N, C, 4, 4]`` at the constant), ``w: [N, w_dim]``
        -> ``[N, C_out, R, R]``. Given ``noise`` wins over ``noise_mode``."""
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = self.blur(x)
        if noise is None and noise_mode == "const":
            noise = self.noise_const
        add_noise = noise is not None or noise_mode != "none"
        return self.epilogue(x, w, noise, add_noise=add_noise, generator=generator)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class SynthesisBlock(FusedModule):
    """The two layers at one resolution and that resolution's toRGB (1x1 conv, gain 1, bias,
    linear; only at the output resolution unless progressive). The 4x4 block starts from
    the learned constant ``const [1, C, 4, 4]`` (ones)."""

    def __init__(self, config: GeneratorConfig, resolution: int, *, impl: str = "auto"):
        super().__init__(impl)
        self.resolution = resolution
        channels = config.channels(resolution)
        common = dict(
            blur_filter=config.blur_filter,
            use_noise=config.use_noise,
            norm_eps=config.norm_eps,
            impl=impl,
        )
        if resolution == 4:
            self.const = torch.nn.Parameter(torch.ones([1, channels, 4, 4]))
            self.layer0 = SynthesisLayer(
                None, channels, config.w_dim, 4, up=False, fused=False, **common
            )
        else:
            self.register_parameter("const", None)
            self.layer0 = SynthesisLayer(
                config.channels(resolution // 2),
                channels,
                config.w_dim,
                resolution,
                up=True,
                fused=config.fused_at(resolution),
                **common,
            )
        self.layer1 = SynthesisLayer(
            channels, channels, config.w_dim, resolution, up=False, fused=False, **common
        )
        # Fixed-resolution models use only the last block's toRGB; the others would be
        # parameters without gradients.
        if config.progressive or resolution == config.resolution:
            self.torgb = EqualConv2d(channels, config.img_channels, 1, gain=1.0, impl=impl)
        else:
            self.torgb = None

    def forward(self, x, w0, w1, noise_mode="random", noise=(None, None), generator=None):
        """``x``: the previous block's features ``[N, C_in, R/2, R/2]``, or at 4x4 the constant
        expanded to the batch; ``w0, w1: [N, w_dim]``; ``noise``: one entry per layer.
        Returns the features ``[N, C, R, R]``."""
        x = self.layer0(x, w0, noise_mode, noise[0], generator)
        return self.layer1(x, w1, noise_mode, noise[1], generator)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class SynthesisNetwork(LodMixin, FusedModule):
    """``w [N, num_ws, w_dim]`` -> images ``[N, img_channels, resolution, resolution]``.

    One :class:`SynthesisBlock` per resolution 4², 8², ... (layers ``2i`` and ``2i + 1`` of
    w drive block ``i``). Fixed-resolution models output the last block's toRGB; progressive
    ones follow ``lod`` (see :mod:`stylegan_fast.models.progressive`). The feature maps are
    channels_last when the constant is (``G.to(memory_format=torch.channels_last)``).
    """

    def __init__(self, config: GeneratorConfig, *, impl: str = "auto"):
        super().__init__(impl)
        config.validate()
        self.w_dim, self.num_ws = config.w_dim, config.num_ws
        self.resolution, self.img_channels = config.resolution, config.img_channels
        self.use_noise = config.use_noise
        self.blocks = torch.nn.ModuleList(
            SynthesisBlock(config, 2**k, impl=impl) for k in range(2, config.resolution_log2 + 1)
        )
        self.upsample = Upsample2d(2, (1, 1), impl=impl)  # nearest, for lower-lod images
        self._init_lod(config.max_lod, config.progressive)

    def forward(
        self,
        w: torch.Tensor,
        noise_mode: str = "random",
        noise: Sequence[torch.Tensor | None] | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Synthesizes images from per-layer styles.

        Args:
            w: ``[N, num_ws, w_dim]``; its dtype is the dtype the network computes in.
            noise_mode: ``random`` (fresh ``[N, 1, R, R]`` noise per layer, drawn from
                ``generator``), ``const`` (each layer's fixed ``noise_const`` buffer) or
                ``none`` (no noise).
            noise: None, or ``num_ws`` entries, one per layer: a ``[N or 1, 1, R, R]`` tensor
                (used whatever ``noise_mode`` says) or None (``noise_mode`` decides).
            generator: where random noise is drawn from (None: torch's default).

        Returns:
            ``[N, img_channels, resolution, resolution]`` in ``w``'s dtype.
        """
        name = "Generator.synthesis"
        if not isinstance(w, torch.Tensor) or not w.is_floating_point():
            raise TypeError(f"{name}: w must be a floating-point tensor [N, num_ws, w_dim]")
        if w.ndim != 3 or w.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"{name}: w must have shape [N, num_ws, w_dim] = [N, {self.num_ws}, "
                f"{self.w_dim}], got {list(w.shape)}"
            )
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"{name}: noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise is None:
            noise = [None] * self.num_ws
        elif len(noise) != self.num_ws:
            raise ValueError(
                f"{name}: noise must have one entry per layer ({self.num_ws}), got {len(noise)}"
            )
        elif not self.use_noise and any(n is not None for n in noise):
            raise ValueError(f"{name}: this generator has no noise inputs (use_noise=False)")

        top = len(self.blocks) - 1 - self._lod_floor
        const = self.blocks[0].const.to(w.dtype)
        channels_last = not const.is_contiguous() and const.is_contiguous(
            memory_format=torch.channels_last
        )
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x = const.expand(w.shape[0], -1, -1, -1).contiguous(memory_format=fmt)
        previous = x
        for i in range(top + 1):
            previous = x
            x = self.blocks[i](
                x, w[:, 2 * i], w[:, 2 * i + 1], noise_mode, noise[2 * i : 2 * i + 2], generator
            )
        img = self.blocks[top].torgb(x)
        if self.progressive and top > 0:
            coarse = self.upsample(self.blocks[top - 1].torgb(previous))
            img = torch.lerp(img, coarse, self._fade_alpha(img))
        for _ in range(len(self.blocks) - 1 - top):
            img = self.upsample(img)
        return img

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, num_ws={self.num_ws}, w_dim={self.w_dim}, "
            f"progressive={self.progressive}, impl={self.impl}"
        )
