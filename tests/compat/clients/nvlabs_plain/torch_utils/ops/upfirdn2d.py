"""Plain-PyTorch upfirdn2d and helpers (the reference), with NVlabs' signatures."""

import compat_eager as eager
import torch


def setup_filter(f, device=torch.device("cpu"), normalize=True, flip_filter=False, gain=1,
                 separable=None):  # fmt: skip
    f = torch.as_tensor(1 if f is None else f, dtype=torch.float32)
    f = f[None] if f.ndim == 0 else f
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    f = f / f.sum() if normalize else f
    f = f.flip(list(range(f.ndim))) if flip_filter else f
    return (f * gain ** (f.ndim / 2)).to(device)


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return eager.nvlabs_upfirdn2d(x, f, up, down, padding, flip_filter, gain)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return eager.nvlabs_upsample2d(x, f, up, padding, flip_filter, gain)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return eager.nvlabs_downsample2d(x, f, down, padding, flip_filter, gain)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="cuda"):
    return eager.nvlabs_filter2d(x, f, padding, flip_filter, gain)


def _parse_padding(padding):
    return eager._padding4(padding)


def _get_filter_size(f):
    return eager._size(f)


def _init():
    return False
