"""PixelNorm and MinibatchStdDev: plain-torch layers (differentiable to any order)."""

from __future__ import annotations

import torch

from ._base import FusedModule, check_input, positive_int


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # Squares of fp16 values overflow at 256; statistics are taken in float32 instead.
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def pixel_norm(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """``x * rsqrt(mean(x ** 2, dim) + eps)``: each feature vector scaled to unit RMS
    (StyleGAN's ``normalize_latents`` on z). Any shape; returns ``x``'s shape and dtype."""
    xc = x.to(_compute_dtype(x.dtype))
    y = xc * torch.rsqrt(xc.square().mean(dim=dim, keepdim=True) + eps)
    return y.to(x.dtype)


def minibatch_stddev(
    x: torch.Tensor, group_size: int = 4, num_features: int = 1, eps: float = 1e-8
) -> torch.Tensor:
    """Appends ``num_features`` channels holding the mean standard deviation of the features
    over each group of samples (Karras et al. 2018), so the discriminator can see variety.

    Sample ``n`` belongs to group ``n % (N / G)`` with ``G = min(group_size, N)`` (groups are
    strided through the batch). Per group and per feature split ``f`` (the channels cut into
    ``num_features`` equal parts): the standard deviation over the group's ``G`` samples of
    every (channel, pixel), ``sqrt(var + eps)``, averaged over the split's channels and all
    pixels. Statistics in float32 for fp16/bf16.

    Args:
        x: ``[N, C, H, W]`` with ``N`` divisible by ``min(group_size, N)`` and ``C`` by
            ``num_features``.

    Returns:
        ``[N, C + num_features, H, W]`` in ``x``'s dtype (channels_last if ``x`` is).
    """
    n, c, h, w = x.shape
    group = min(group_size, n)
    if n % group != 0:
        raise ValueError(
            f"minibatch_stddev: the batch size ({n}) must be divisible by the group size "
            f"min(group_size, N) = {group}"
        )
    if c % num_features != 0:
        raise ValueError(
            f"minibatch_stddev: the channels ({c}) must be divisible by num_features "
            f"({num_features})"
        )
    y = x.to(_compute_dtype(x.dtype)).reshape(group, n // group, num_features, -1, h, w)
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + eps).sqrt()  # [N/G, F, C/F, H, W]
    y = y.mean(dim=(2, 3, 4))  # [N/G, F]
    y = y.reshape(-1, num_features, 1, 1).repeat(group, 1, h, w).to(x.dtype)
    out = torch.cat([x, y], dim=1)
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)  # cat returns NCHW here
    return out


class PixelNorm(FusedModule):
    """:func:`pixel_norm` as a module. ``impl`` is accepted for uniformity with the other
    layers; this layer is plain torch on every backend.

    ``x: [N, C, ...] -> `` same shape, normalised along ``dim``.
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8, *, impl: str = "auto"):
        super().__init__(impl)
        self.dim, self.eps = int(dim), float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError("PixelNorm: input must be a floating-point tensor")
        return pixel_norm(x, self.dim, self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps:g}"


class MinibatchStdDev(FusedModule):
    """:func:`minibatch_stddev` as a module (plain torch on every backend; twice
    differentiable, as R1 through a discriminator needs).

    Args:
        group_size: samples per group (``min(group_size, N)`` at run time).
        num_features: statistics channels appended.
        eps: added to the variance before the square root.

    ``x: [N, C, H, W] -> [N, C + num_features, H, W]``.
    """

    def __init__(
        self, group_size: int = 4, num_features: int = 1, eps: float = 1e-8, *, impl="auto"
    ):
        super().__init__(impl)
        name = type(self).__name__
        self.group_size = positive_int(name, "group_size", group_size)
        self.num_features = positive_int(name, "num_features", num_features)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(type(self).__name__, x, 4)
        return minibatch_stddev(x, self.group_size, self.num_features, self.eps)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_features={self.num_features}, eps={self.eps:g}"
