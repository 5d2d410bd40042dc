"""stylegan_fast: fused Triton and C++/CUDA kernels for StyleGAN, with eager references,
exact double backward, drop-in layers and models.

``stylegan_fast.ops`` holds the functional ops (``bias_act``, ...); ``stylegan-fast info``
prints which backend serves each op and why the others cannot.
"""

from . import ops  # noqa: E402  (registers the ops; needs _library loaded first)
from ._backend import FallbackWarning
from ._library import EXTENSION

__version__ = "0.1.0"

__all__ = ["EXTENSION", "FallbackWarning", "ops", "__version__"]
