"""Plain-PyTorch upfirdn2d (the reference)."""

from compat_eager import rosinality_upfirdn2d as upfirdn2d  # noqa: F401
