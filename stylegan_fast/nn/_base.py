"""The base of the layers that call the fused ops: it holds the ``impl`` they pass on."""

from __future__ import annotations

import torch

from .._backend import IMPLS


def check_impl(impl) -> str:
    """``impl`` must be one of ``auto, ref, cpp, triton, cuda``."""
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


def set_impl(module: torch.nn.Module, impl: str) -> torch.nn.Module:
    """Sets ``impl`` on ``module`` and every :class:`FusedModule` inside it; returns ``module``.

    Works on any ``torch.nn.Module`` (a user's model holding stylegan_fast layers too), so one
    set of weights can be run through every backend.
    """
    impl = check_impl(impl)
    for sub in module.modules():
        if isinstance(sub, FusedModule):
            sub.impl = impl
    return module


class FusedModule(torch.nn.Module):
    """A module whose forward calls stylegan_fast ops with ``self.impl``.

    ``impl`` stays settable after construction: assign it, or call :meth:`set_impl` to set it
    on every submodule.
    """

    def __init__(self, impl: str = "auto"):
        super().__init__()
        self.impl = check_impl(impl)

    def set_impl(self, impl: str) -> FusedModule:
        """Sets ``impl`` here and on every :class:`FusedModule` below; returns ``self``."""
        return set_impl(self, impl)


def positive_int(owner: str, name: str, value) -> int:
    """``value`` as an int >= 1, else a ValueError/TypeError naming ``owner.name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {value}")
    return value


def positive_float(owner: str, name: str, value) -> float:
    """``value`` as a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{owner}: {name} must be finite and > 0, got {value}")
    return value


def check_input(owner: str, x, ndim: int, channels: int | None = None, dim: int = 1):
    """``x`` must be a floating tensor of rank ``ndim`` with ``channels`` along ``dim``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: input must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{owner}: input must be a floating-point tensor, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{owner}: input must have {ndim} dimensions, got shape {list(x.shape)}")
    if channels is not None and x.shape[dim] != channels:
        raise ValueError(
            f"{owner}: input must have {channels} features along dim {dim}, got shape "
            f"{list(x.shape)}"
        )
