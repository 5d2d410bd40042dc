"""The PGGAN/StyleGAN1 discriminator."""

from __future__ import annotations

import math

import torch

from ..nn import Blur, Downsample2d, EqualConv2d, EqualLinear, FusedModule, MinibatchStdDev
from ._configured import ConfiguredModel
from .config import DiscriminatorConfig, discriminator_config
from .mapping import check_labels
from .progressive import LodMixin

_LRELU = dict(gain=math.sqrt(2), activation="lrelu", act_gain=1.0)  # StyleGAN1: gain in weights


class DiscriminatorBlock(FusedModule):
    """At resolution ``R >= 8``: 3x3 conv + lrelu (``nf(k-1)``), ``[1, 2, 1]`` blur, 3x3 conv
    + 2x2 average pooling (or the equivalent stride-2 conv when ``fused``) + lrelu
    (``nf(k-2)``). ``[N, C_R, R, R] -> [N, C_{R/2}, R/2, R/2]``."""

    def __init__(self, config: DiscriminatorConfig, resolution: int, *, impl: str = "auto"):
        super().__init__(impl)
        self.resolution = resolution
        channels, out_channels = config.channels(resolution), config.channels(resolution // 2)
        self.conv0 = EqualConv2d(channels, channels, 3, impl=impl, **_LRELU)
        self.blur = Blur(config.blur_filter, impl=impl)
        self.conv1 = EqualConv2d(
            channels,
            out_channels,
            3,
            down=2,
            fused_resample=config.fused_at(resolution),
            impl=impl,
            **_LRELU,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.blur(self.conv0(x)))

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class DiscriminatorEpilogue(FusedModule):
    """The 4x4 block: minibatch stddev, 3x3 conv + lrelu, dense (``16 C -> nf(0)``) + lrelu,
    dense to ``max(c_dim, 1)`` scores (gain 1, linear); a conditional model returns the score
    of each sample's label (``sum(scores * c)``). ``[N, C, 4, 4] -> [N, 1]``."""

    def __init__(self, config: DiscriminatorConfig, *, impl: str = "auto"):
        super().__init__(impl)
        channels = config.channels(4)
        self.c_dim = config.c_dim
        extra = 0
        if config.mbstd_group_size > 1:
            self.mbstd = MinibatchStdDev(config.mbstd_group_size, config.mbstd_num_features)
            extra = config.mbstd_num_features
        else:
            self.mbstd = None
        self.conv = EqualConv2d(channels + extra, channels, 3, impl=impl, **_LRELU)
        self.fc = EqualLinear(channels * 16, config.nf(0), impl=impl, **_LRELU)
        self.out = EqualLinear(config.nf(0), max(config.c_dim, 1), gain=1.0, impl=impl)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if c is not None:
            x = (x * c).sum(dim=1, keepdim=True)
        return x


class Discriminator(LodMixin, ConfiguredModel):
    """PGGAN/StyleGAN1 discriminator (no residual connections): fromRGB (1x1 conv + lrelu) at
    the input resolution, one :class:`DiscriminatorBlock` per resolution down to 8², then the
    4x4 :class:`DiscriminatorEpilogue`. Progressive models read ``lod`` (see
    :mod:`stylegan_fast.models.progressive`) and keep a fromRGB for every resolution; fixed
    ones have only the top one (the others are ``Identity`` placeholders, no parameters).

    ``D(img: [N, img_channels, R, R], c: [N, c_dim] or None) -> logits [N, 1]``.
    """

    CONFIG = DiscriminatorConfig
    PRESET_CONFIG = staticmethod(discriminator_config)

    def __init__(self, config: DiscriminatorConfig | None = None, *, impl: str = "auto"):
        super().__init__(impl)
        config = self._keep_config(config)
        self.resolution, self.img_channels = config.resolution, config.img_channels
        self.c_dim = config.c_dim
        resolutions = [2**k for k in range(2, config.resolution_log2 + 1)]
        # fromrgb[i] and blocks[i] work at resolutions[i]; blocks[0] is the 4x4 epilogue.
        self.fromrgb = torch.nn.ModuleList(
            EqualConv2d(config.img_channels, config.channels(r), 1, impl=impl, **_LRELU)
            if config.progressive or r == config.resolution
            else torch.nn.Identity()
            for r in resolutions
        )
        self.blocks = torch.nn.ModuleList(
            [DiscriminatorEpilogue(config, impl=impl)]
            + [DiscriminatorBlock(config, r, impl=impl) for r in resolutions[1:]]
        )
        self.downsample = Downsample2d(2, (1, 1), impl=impl)  # 2x2 box, for lower-lod images
        self._init_lod(config.max_lod, config.progressive)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Scores images.

        Args:
            img: ``[N, img_channels, resolution, resolution]`` floating (any memory format;
                its dtype is the dtype the network computes in).
            c: ``[N, c_dim]`` labels (one-hot) for a conditional model, else None.

        Returns:
            ``[N, 1]`` logits (unnormalised realness scores).
        """
        name = "Discriminator"
        R = self.resolution
        if not isinstance(img, torch.Tensor) or not img.is_floating_point():
            raise TypeError(f"{name}: img must be a floating-point tensor [N, C, {R}, {R}]")
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, R, R):
            raise ValueError(
                f"{name}: img must have shape [N, img_channels, resolution, resolution] = "
                f"[N, {self.img_channels}, {R}, {R}], got {list(img.shape)}"
            )
        c = check_labels(name, c, img.shape[0], self.c_dim, img)
        top = len(self.blocks) - 1 - self._lod_floor
        for _ in range(self._lod_floor):
            img = self.downsample(img)
        x = self.fromrgb[top](img)
        if top > 0:
            x = self.blocks[top](x)
            if self.progressive:
                coarse = self.fromrgb[top - 1](self.downsample(img))
                x = torch.lerp(x, coarse, self._fade_alpha(x))
        for i in range(top - 1, 0, -1):
            x = self.blocks[i](x)
        return self.blocks[0](x, c)

    def extra_repr(self) -> str:
        return (
            f"resolution={self.resolution}, c_dim={self.c_dim}, "
            f"progressive={self.progressive}, impl={self.impl}"
        )
