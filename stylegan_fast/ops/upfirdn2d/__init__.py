"""upfirdn2d: upsample (zero insertion), pad, FIR filter, downsample in one op, and the
resampling helpers built on it (NVlabs' ``upfirdn2d`` semantics)."""

from __future__ import annotations

import torch

from ... import _backend
from .. import _validation as v
from . import geometry, reference, registration

__all__ = ["setup_filter", "upfirdn2d", "upsample2d", "downsample2d", "filter2d"]

OP = "upfirdn2d"

# Why a kernel cannot serve a filter that requires grad.
_FILTER_GRAD_REASON = (
    "its kernels treat the filter as a constant and give f no gradient (f.requires_grad is "
    "True; impl='ref' differentiates with respect to f)"
)
_FILTER_GRAD_REASONS = {backend: _FILTER_GRAD_REASON for backend in ("cpp", "triton", "cuda")}


def setup_filter(
    f=None,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Turns filter taps into the float32 filter tensor that :func:`upfirdn2d` takes.

    Args:
        f: None (the identity ``[1]``), or the taps as a list, array or tensor: a scalar,
            ``[ft]`` or ``[fh, fw]``.
        device: where the result lives.
        normalize: divide by the sum of the taps (so filtering keeps a constant image).
        flip_filter: flip the taps along every axis.
        gain: scale of the whole 2-D operator: the result is multiplied by
            ``gain ** (f.ndim / 2)``, so a separable filter (applied once per axis) carries
            ``gain ** 0.5``.
        separable: keep a 1-D filter 1-D (applied along both axes) instead of taking its
            outer product ``f ⊗ f``; None: separable when 1-D with at least 8 taps.

    Returns:
        ``[ft]`` (separable) or ``[fh, fw]``, float32, on ``device``.
    """
    op = "setup_filter"
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2):
        raise ValueError(f"{op}: f must have 0, 1 or 2 dimensions, got shape {list(f.shape)}")
    if f.numel() == 0:
        raise ValueError(f"{op}: f must have at least one tap, got shape {list(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if separable and f.ndim != 1:
        raise ValueError(f"{op}: a separable filter must be 1-D, got shape {list(f.shape)}")
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    gain = v.check_number(op, "gain", gain)
    if f.ndim == 1 and gain < 0:
        raise ValueError(
            f"{op}: gain must be >= 0 for a separable filter (each axis takes gain ** 0.5), "
            f"got {gain}; use a 2-D filter or upfirdn2d's gain argument"
        )
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def _pair(op: str, name: str, value) -> tuple[int, int]:
    """An int, or ``[x, y]``, as ``(x, y)``; each must be >= 1."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 2):
        raise ValueError(f"{op}: {name} must be an int or [{name}x, {name}y], got {value!r}")
    values = [v.check_int(op, name, item) for item in values]
    if min(values) < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {value!r}")
    return (values[0], values[-1])


def _padding(op: str, value) -> tuple[int, int, int, int]:
    """An int, ``[x, y]`` or ``[x0, x1, y0, y1]`` as ``(x0, x1, y0, y1)``."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    values = [v.check_int(op, "padding", item) for item in values]
    if len(values) == 1:
        return (values[0],) * 4
    if len(values) == 2:
        return (values[0], values[0], values[1], values[1])
    if len(values) == 4:
        return tuple(values)
    raise ValueError(f"{op}: padding must be an int, [x, y] or [x0, x1, y0, y1], got {value!r}")


def _check_filter_shape(op: str, f) -> None:
    if not isinstance(f, torch.Tensor):
        raise TypeError(
            f"{op}: f must be a torch.Tensor (see setup_filter) or None, got {type(f).__name__}"
        )
    if f.ndim not in (1, 2):
        raise ValueError(
            f"{op}: f must have shape [ft] (separable) or [fh, fw], got {list(f.shape)}"
        )
    if f.numel() == 0:
        raise ValueError(f"{op}: f must have at least one tap, got shape {list(f.shape)}")


def _filter(op: str, f, x: torch.Tensor) -> torch.Tensor:
    if f is None:
        return torch.ones([1, 1], dtype=torch.float32, device=x.device)
    _check_filter_shape(op, f)
    if f.dtype != torch.float32:
        raise TypeError(f"{op}: f must be float32 (as setup_filter makes it), got {f.dtype}")
    if f.device != x.device:
        raise ValueError(
            f"{op}: f is on {f.device} but x is on {x.device}; move them to one device"
        )
    return f


def _filter_size(op: str, f) -> tuple[int, int]:
    """``(fw, fh)`` of a filter argument (1, 1 for None), for the helpers' padding."""
    if f is None:
        return 1, 1
    _check_filter_shape(op, f)
    return f.shape[-1], f.shape[0]


def _upfirdn2d(op, x, f, up, down, padding, flip_filter, gain, impl) -> torch.Tensor:
    v.check_tensor(op, "x", x)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must have shape [N, C, H, W], got {list(x.shape)}")
    f = _filter(op, f, x)
    if not isinstance(flip_filter, bool):
        raise TypeError(f"{op}: flip_filter must be a bool, got {type(flip_filter).__name__}")
    gain = v.check_number(op, "gain", gain)
    fh, fw = f.shape[0], f.shape[-1]
    out_h = geometry.output_size(x.shape[2], up[1], down[1], padding[2], padding[3], fh)
    out_w = geometry.output_size(x.shape[3], up[0], down[0], padding[0], padding[1], fw)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{op}: the output would be {out_h}x{out_w} (H x W): x is {x.shape[2]}x{x.shape[3]}, "
            f"up={list(up)}, padding={list(padding)} and the {fh}x{fw} filter leave no sample "
            "(need H * upy + pady0 + pady1 >= fh, likewise for W)"
        )
    reasons = _FILTER_GRAD_REASONS if f.requires_grad else None
    triton_reason = geometry.triton_reason(fh, fw, up, down)
    if triton_reason is not None and reasons is None:
        reasons = {"triton": triton_reason}
    backend = _backend.resolve(OP, impl, x.device, op_reasons=reasons, x=x)
    if backend == "ref":
        return reference.upfirdn2d(x, f, up, down, padding, flip_filter, gain)
    return registration.OP.kernels(backend).fwd(x, f, *up, *down, *padding, flip_filter, gain)


def _centred(op, x, f, up, down, padding, flip_filter, gain, impl, gain_scale=None) -> torch.Tensor:
    """The resampling helpers' upfirdn2d: ``up`` and ``down`` parsed already, ``padding`` the
    extra padding added to the centring for ``f``; ``gain`` times ``gain_scale`` when given
    (upsampling: zero insertion divides the mean by ``upx * upy``)."""
    extra = _padding(op, padding)
    padding = geometry.centred_padding(*_filter_size(op, f), up, down, extra)
    if gain_scale is not None:
        gain = v.check_number(op, "gain", gain) * gain_scale
    return _upfirdn2d(op, x, f, up, down, padding, flip_filter, gain, impl)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up=1,
    down=1,
    padding=0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Upsamples, pads, filters and downsamples ``x`` in one pass.

    Per axis: insert ``up - 1`` zeros after every sample; pad (negative values crop); convolve
    with ``f`` ('valid' mode; cross-correlate when ``flip_filter``), the filter scaled by
    ``gain ** (f.ndim / 2)``; keep every ``down``-th sample. Linear in ``x`` and
    differentiable to any order; the kernels serve every order with respect to ``x`` (the
    gradient is upfirdn2d again). A filter that requires grad is served by the reference.

    Args:
        x: ``[N, C, H, W]``; any memory format; fp16/bf16/fp32/fp64.
        f: ``[fh, fw]``, ``[ft]`` (separable: applied along both axes) or None (identity),
            float32, on ``x``'s device; see :func:`setup_filter`.
        up: upsampling factor, an int or ``[upx, upy]``, >= 1.
        down: downsampling factor, an int or ``[downx, downy]``, >= 1.
        padding: an int, ``[px, py]`` or ``[padx0, padx1, pady0, pady1]``; negative crops.
        flip_filter: cross-correlate with ``f`` instead of convolving.
        gain: overall scale of the output.
        impl: ``auto``, ``ref``, ``cpp``, ``cuda`` or ``triton`` (see ``stylegan_fast._backend``).

    Returns:
        ``y: [N, C, OH, OW]`` with ``OH = (H * upy + pady0 + pady1 - fh) // downy + 1`` and
        ``OW`` likewise; channels_last input gives channels_last output.
    """
    op = "upfirdn2d"
    return _upfirdn2d(
        op, x, f, _pair(op, "up", up), _pair(op, "down", down), _padding(op, padding),
        flip_filter, gain, impl,
    )  # fmt: skip


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up=2,
    padding=0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Upsamples ``x`` by ``up`` with the interpolation filter ``f``.

    upfirdn2d with the padding centred for the filter and ``gain`` multiplied by
    ``upx * upy`` (zero insertion divides the mean by that much).

    Args:
        x: ``[N, C, H, W]``. f, flip_filter, gain, impl: as for :func:`upfirdn2d`.
        up: an int or ``[upx, upy]``, >= 1.
        padding: extra padding (int, ``[px, py]`` or ``[x0, x1, y0, y1]``), added to the
            centring.

    Returns:
        ``[N, C, H * upy + pady0 + pady1, W * upx + padx0 + padx1]``.
    """
    op = "upsample2d"
    up = _pair(op, "up", up)
    return _centred(op, x, f, up, (1, 1), padding, flip_filter, gain, impl, up[0] * up[1])


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down=2,
    padding=0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Filters ``x`` with the anti-aliasing filter ``f``, then downsamples by ``down``.

    Args:
        x: ``[N, C, H, W]``. f, flip_filter, gain, impl: as for :func:`upfirdn2d`.
        down: an int or ``[downx, downy]``, >= 1.
        padding: extra padding, added to the centring.

    Returns:
        ``[N, C, (H + pady0 + pady1) // downy, (W + padx0 + padx1) // downx]`` (for even
        sizes).
    """
    op = "downsample2d"
    return _centred(op, x, f, (1, 1), _pair(op, "down", down), padding, flip_filter, gain, impl)


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding=0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Filters ``x`` with ``f``, padded so that the output keeps ``x``'s size.

    Args:
        x: ``[N, C, H, W]``. f, flip_filter, gain, impl: as for :func:`upfirdn2d`.
        padding: extra padding, added to the centring.

    Returns:
        ``[N, C, H + pady0 + pady1, W + padx0 + padx1]``.
    """
    op = "filter2d"
    return _centred(op, x, f, (1, 1), (1, 1), padding, flip_filter, gain, impl)
