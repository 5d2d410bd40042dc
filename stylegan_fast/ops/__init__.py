"""The functional fused ops. Each has an eager reference (``impl="ref"``) and fast kernels
behind the same call; see ``stylegan_fast._backend`` for how ``impl`` is resolved."""

from .. import _backend
from .adain import adain
from .bias_act import bias_act
from .layer_epilogue import layer_epilogue
from .noise_injection import noise_injection
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

# Every op is imported above (each registers itself, ops/_registry.py): freeze() tabulates
# their backends' availability and refuses any registration after it.
_backend.freeze()

__all__ = [
    "adain",
    "bias_act",
    "downsample2d",
    "filter2d",
    "layer_epilogue",
    "noise_injection",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
