"""One alias-free synthesis layer in stylegan3's style: a modulated convolution through
conv2d_gradfix, then filtered_lrelu (2x upsampled leaky ReLU, downsampled back)."""

import math

import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import filtered_lrelu
from torch_utils.ops import bias_act


@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    def __init__(self, w_dim, channels, conv_kernel=3):
        super().__init__()
        self.conv_kernel = conv_kernel
        self.affine_weight = torch.nn.Parameter(torch.randn([channels, w_dim]))
        self.affine_bias = torch.nn.Parameter(torch.ones([channels]))
        self.weight = torch.nn.Parameter(
            torch.randn([channels, channels, conv_kernel, conv_kernel])
        )
        self.bias = torch.nn.Parameter(torch.zeros([channels]))
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8  # a separable 1-D low-pass filter
        self.register_buffer("up_filter", taps)
        self.register_buffer("down_filter", taps)

    def forward(self, x, w):
        batch_size, in_channels = x.shape[:2]
        styles = bias_act.bias_act(w.matmul(self.affine_weight.t()) / math.sqrt(w.shape[1]),
                                   self.affine_bias)  # fmt: skip
        misc.assert_shape(styles, [batch_size, in_channels])
        weight = self.weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)
        weight = weight * (weight.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        x = conv2d_gradfix.conv2d(input=x.reshape(1, -1, *x.shape[2:]),
                                  weight=weight.reshape(-1, in_channels, *weight.shape[3:]),
                                  padding=self.conv_kernel - 1, groups=batch_size)  # fmt: skip
        x = x.reshape(batch_size, -1, *x.shape[2:])
        # Upsample 2x (padding crops back to the footprint), leaky ReLU, downsample 2x.
        return filtered_lrelu.filtered_lrelu(x=x, fu=self.up_filter, fd=self.down_filter,
                                             b=self.bias, up=2, down=2, padding=1,
                                             clamp=256)  # fmt: skip
