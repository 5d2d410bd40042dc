"""rosinality's ``op`` package (stylegan2-pytorch): ``FusedLeakyReLU``, ``fused_leaky_relu``,
``upfirdn2d`` and the ``conv2d_gradfix`` module; ``op.fused_act``, ``op.upfirdn2d`` and
``op.conv2d_gradfix`` are here too, as modules of the same names.
:func:`stylegan_fast.compat.rosinality.install` makes their ``from op import ...`` import it."""

from . import conv2d_gradfix
from .fused_act import FusedLeakyReLU, fused_leaky_relu
from .upfirdn2d import upfirdn2d

__all__ = ["FusedLeakyReLU", "conv2d_gradfix", "fused_leaky_relu", "upfirdn2d"]
