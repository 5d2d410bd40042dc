"""Plain-PyTorch fused_leaky_relu / FusedLeakyReLU (the reference)."""

from compat_eager import RosinalityFusedLeakyReLU as FusedLeakyReLU
from compat_eager import rosinality_fused_leaky_relu as fused_leaky_relu
