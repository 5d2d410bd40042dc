"""rosinality's ``op`` package (stylegan2-pytorch): replace ``from op import FusedLeakyReLU,
fused_leaky_relu, upfirdn2d`` with ``from stylegan_fast.compat.rosinality.op import ...``.
``op.fused_act`` and ``op.upfirdn2d`` are here too, as modules of the same names."""

from .fused_act import FusedLeakyReLU, fused_leaky_relu
from .upfirdn2d import upfirdn2d

__all__ = ["FusedLeakyReLU", "fused_leaky_relu", "upfirdn2d"]
