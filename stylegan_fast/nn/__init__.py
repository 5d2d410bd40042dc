"""Drop-in ``torch.nn`` layers built on the fused ops. Each takes ``impl=`` (``auto``, ``ref``,
``cpp``, ``cuda``, ``triton``), settable later with :func:`set_impl`; parameters are cast to
the input's dtype, so fp16/bf16 inputs and autocast work."""

from ._base import FusedModule, set_impl
from .activation import BiasAct
from .epilogue import LayerEpilogue
from .equalized import EqualConv2d, EqualLinear
from .noise import NoiseInjection
from .normalization import MinibatchStdDev, PixelNorm, minibatch_stddev, pixel_norm
from .resample import Blur, Downsample2d, Upsample2d
from .style import AdaIN, StyleMod

__all__ = [
    "AdaIN",
    "BiasAct",
    "Blur",
    "Downsample2d",
    "EqualConv2d",
    "EqualLinear",
    "FusedModule",
    "LayerEpilogue",
    "MinibatchStdDev",
    "NoiseInjection",
    "PixelNorm",
    "StyleMod",
    "Upsample2d",
    "minibatch_stddev",
    "pixel_norm",
    "set_impl",
]
