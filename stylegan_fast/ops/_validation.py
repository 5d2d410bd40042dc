"""Argument checks shared by the public ops: clear TypeError/ValueError messages that name the
argument and say what was expected, raised before any kernel sees the input."""

from __future__ import annotations

import numbers

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(op: str, name: str, value, ndim: int | None = None) -> torch.Tensor:
    """``value`` must be a floating tensor (fp16/bf16/fp32/fp64), of rank ``ndim`` if given."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{op}: {name} must be float16, bfloat16, float32 or float64, got {value.dtype}"
        )
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dimensions, got shape {list(value.shape)}")
    return value


def check_like(op: str, name: str, value: torch.Tensor, x: torch.Tensor, x_name: str = "x"):
    """``value`` must share ``x``'s dtype and device (no silent promotion or transfer)."""
    if value.dtype != x.dtype:
        raise TypeError(
            f"{op}: {name} must have the dtype of {x_name} ({x.dtype}), got {value.dtype}; "
            f"cast it with .to({x_name}.dtype)"
        )
    if value.device != x.device:
        raise ValueError(
            f"{op}: {name} is on {value.device} but {x_name} is on {x.device}; "
            "move them to one device"
        )


def check_shape(op: str, name: str, value: torch.Tensor, expected: list[int], meaning: str):
    """``value.shape`` must equal ``expected``; ``meaning`` spells the shape out, e.g. "[C]"."""
    if list(value.shape) != list(expected):
        raise ValueError(
            f"{op}: {name} must have shape {meaning} = {list(expected)}, got {list(value.shape)}"
        )


def check_number(op: str, name: str, value, allow_none: bool = False) -> float | None:
    """A real number (int or float), returned as float; None passes when allowed."""
    if type(value) is float:  # the common case, without the ABC check's cost
        return value
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__}")
    return float(value)


def check_int(op: str, name: str, value) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    return int(value)


def check_noise(op: str, noise, x: torch.Tensor) -> None:
    """``noise`` must be a ``[N, 1, H, W]`` image per sample of ``x: [N, C, H, W]``, or one
    ``[1, 1, H, W]`` image the batch shares, of ``x``'s dtype and device."""
    check_tensor(op, "noise", noise, ndim=4)
    n, _, h, w = x.shape
    if list(noise.shape) not in ([n, 1, h, w], [1, 1, h, w]):
        raise ValueError(
            f"{op}: noise must have shape [N, 1, H, W] = {[n, 1, h, w]} or "
            f"[1, 1, H, W] = {[1, 1, h, w]}, got {list(noise.shape)}"
        )
    check_like(op, "noise", noise, x)
