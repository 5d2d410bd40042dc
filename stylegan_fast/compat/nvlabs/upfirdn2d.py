"""NVlabs' ``torch_utils.ops.upfirdn2d``: :func:`setup_filter`, :func:`upfirdn2d`,
:func:`upsample2d`, :func:`downsample2d`, :func:`filter2d`.

``stylegan_fast.ops`` implements these with NVlabs' semantics already (the same filter
preparation, up/down/padding parsing, centring of the helpers' padding, gain and flip), so each
shim passes its arguments through (:func:`._impl.shim` builds each from our op). What differs is
adapted here:

- ``impl``: NVlabs' default ``"cuda"`` becomes our ``"auto"``; ``"ref"`` stays ``"ref"``.
- ``setup_filter``: ``f`` has no default, and ``device`` defaults to ``torch.device("cpu")``,
  as in NVlabs' signature. A float32 tensor passed as ``f`` is never modified (NVlabs
  normalises such a tensor in place).

NVlabs' ``conv2d_resample`` also imports two private helpers from this module,
``_parse_padding`` and ``_get_filter_size``; they are here too, so its imports can point here.
"""

from __future__ import annotations

import inspect

import torch

from ...ops.upfirdn2d import _filter_size, _padding
from ...ops.upfirdn2d import downsample2d as _downsample2d
from ...ops.upfirdn2d import filter2d as _filter2d
from ...ops.upfirdn2d import setup_filter as _setup_filter
from ...ops.upfirdn2d import upfirdn2d as _upfirdn2d
from ...ops.upfirdn2d import upsample2d as _upsample2d
from . import _impl
from ._impl import init as _init  # noqa: F401  (NVlabs' scripts call _init())

__all__ = ["setup_filter", "upfirdn2d", "upsample2d", "downsample2d", "filter2d"]


setup_filter = _impl.shim(
    _setup_filter,
    __name__,
    f=inspect.Parameter.empty,
    device=torch.device("cpu"),
    doc="""The float32 filter tensor for :func:`upfirdn2d` from taps ``f``.

    Args:
        f: None (the identity), or taps as a scalar, ``[ft]`` or ``[fh, fw]`` (list, array or
            tensor). A 1-D filter becomes its outer product ``f ⊗ f`` unless separable.
        device: where the result lives.
        normalize: divide by the sum of the taps.
        flip_filter: flip the taps along every axis.
        gain: scale of the 2-D operator (``gain ** (ndim / 2)`` on the taps).
        separable: keep a 1-D filter 1-D; None: separable when 1-D with at least 8 taps.

    Returns:
        ``[ft]`` (separable) or ``[fh, fw]``, float32, on ``device``.
    """,
)

upfirdn2d = _impl.shim(
    _upfirdn2d,
    __name__,
    impl="cuda",
    doc="""Upsample (zero insertion), pad (negative crops), FIR filter (true convolution unless
    ``flip_filter``), downsample; the output scaled by ``gain``.

    Args:
        x: ``[N, C, H, W]``; fp16/bf16/fp32/fp64.
        f: float32 ``[fh, fw]``, ``[ft]`` (separable) or None; see :func:`setup_filter`.
        up, down: an int or ``[x, y]``, >= 1.
        padding: an int, ``[px, py]`` or ``[padx0, padx1, pady0, pady1]``.
        flip_filter: cross-correlate with ``f`` instead of convolving.
        gain: overall scale of the output.
        impl: ``"cuda"`` (fastest available) or ``"ref"`` (see :mod:`.bias_act`).

    Returns:
        ``[N, C, (H * upy + pady0 + pady1 - fh) // downy + 1, (likewise for W)]``.
    """,
)

upsample2d = _impl.shim(
    _upsample2d,
    __name__,
    impl="cuda",
    doc="""Upsamples ``x`` by ``up`` with the interpolation filter ``f``, padded so that the
    output is ``up`` times the input (plus ``padding``), the gain compensating for the
    inserted zeros.

    Returns:
        ``[N, C, H * upy + pady0 + pady1, W * upx + padx0 + padx1]``.
    """,
)

downsample2d = _impl.shim(
    _downsample2d,
    __name__,
    impl="cuda",
    doc="""Filters ``x`` with the anti-aliasing filter ``f`` and keeps every ``down``-th sample,
    padded so that the output is the input divided by ``down`` (plus ``padding``).

    Returns:
        ``[N, C, (H + pady0 + pady1) // downy, (W + padx0 + padx1) // downx]`` for sizes that
        ``down`` divides.
    """,
)

filter2d = _impl.shim(
    _filter2d,
    __name__,
    impl="cuda",
    doc="""Filters ``x`` with ``f``, padded so that the output keeps the input's size (plus
    ``padding``).

    Returns:
        ``[N, C, H + pady0 + pady1, W + padx0 + padx1]``.
    """,
)


def _parse_padding(padding) -> tuple[int, int, int, int]:
    """An int, ``[px, py]`` or ``[padx0, padx1, pady0, pady1]`` as
    ``(padx0, padx1, pady0, pady1)`` (imported by NVlabs' ``conv2d_resample``)."""
    return _padding("upfirdn2d", padding)


def _get_filter_size(f) -> tuple[int, int]:
    """``(fw, fh)`` of a filter ``[fh, fw]`` or ``[ft]``, ``(1, 1)`` for None (imported by
    NVlabs' ``conv2d_resample``)."""
    return _filter_size("upfirdn2d", f)
