"""rosinality's stylegan2-pytorch ops: :func:`fused_leaky_relu`, :class:`FusedLeakyReLU` and
:func:`upfirdn2d`, with its signatures. :mod:`.op` mirrors the ``op`` package they are
imported from there."""

from .op import FusedLeakyReLU, fused_leaky_relu, upfirdn2d

__all__ = ["FusedLeakyReLU", "fused_leaky_relu", "upfirdn2d"]
