"""Plain-PyTorch rosinality ``op`` package (the reference)."""

from .fused_act import FusedLeakyReLU, fused_leaky_relu
from .upfirdn2d import upfirdn2d
