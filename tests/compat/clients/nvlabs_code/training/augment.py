"""An augmentation in the style of NVlabs' augment.py: geometric resampling at 2x with a
wavelet-like filter and grid_sample, then a per-channel blur as a grouped convolution."""

import torch
from torch_utils import misc
from torch_utils.ops import upfirdn2d
from torch_utils.ops import grid_sample_gradfix
from torch_utils.ops import conv2d_gradfix

FILTER_TAPS = [0.0625, 0.125, 0.3125, 0.5, 0.5, 0.3125, 0.125, 0.0625]  # 8 taps: separable


def augment(images, shift=0.25):
    batch_size, num_channels, height, width = images.shape
    f = upfirdn2d.setup_filter(FILTER_TAPS)
    images = upfirdn2d.upsample2d(x=images, f=f, up=2)
    theta = torch.eye(2, 3, dtype=images.dtype).repeat(batch_size, 1, 1)
    theta[:, 0, 2] = shift / width
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    images = grid_sample_gradfix.grid_sample(images, grid)
    images = upfirdn2d.downsample2d(x=images, f=f, down=2, flip_filter=True)
    misc.assert_shape(images, [batch_size, num_channels, height, width])
    blur = torch.tensor([0.25, 0.5, 0.25], dtype=images.dtype).reshape(1, 1, 1, 3)
    images = torch.nn.functional.pad(input=images, pad=[1, 1, 0, 0], mode="reflect")
    return conv2d_gradfix.conv2d(input=images, weight=blur.repeat([num_channels, 1, 1, 1]),
                                 groups=num_channels)  # fmt: skip
