"""The 2x resampling of rosinality's non_leaking.py augmentation: up with the flipped
kernel, down with the kernel (a dyadic wavelet-like filter here, exact in float32)."""

import torch

from op import upfirdn2d

KERNEL = (0.0625, 0.25, 0.5625, 0.25, -0.0625, -0.0625)


def resample_2x(img):
    kernel = torch.as_tensor(KERNEL)
    kernel = torch.outer(kernel, kernel).to(img)
    img_2x = upfirdn2d(img, torch.flip(kernel, (0, 1)), up=2, pad=(3, 2))  # [N, C, 2H, 2W]
    return upfirdn2d(img_2x, kernel, down=2, pad=(2, 2))  # [N, C, H, W]
