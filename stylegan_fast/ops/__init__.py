"""The functional fused ops. Each has an eager reference (``impl="ref"``) and fast kernels
behind the same call; see ``stylegan_fast._backend`` for how ``impl`` is resolved."""

from .. import _backend
from .bias_act import bias_act
from .layer_epilogue import layer_epilogue

_backend.freeze()

__all__ = ["bias_act", "layer_epilogue"]
