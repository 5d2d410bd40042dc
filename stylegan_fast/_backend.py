"""Which backend serves an op call, and why the others cannot.

Backends: ``ref`` (eager PyTorch, always available), ``cpp`` (C++ CPU kernels in ``_C``),
``cuda`` (CUDA kernels in ``_C``), ``triton`` (Triton kernels; CPU tensors only under
``TRITON_INTERPRET=1``). ``impl="auto"`` picks, for CPU tensors, ``cpp`` then ``ref``; for
CUDA tensors, the order of the preference table (``_preferences``: per op, memory layout and
plane size class, each entry predicted or measured on a named GPU) then ``ref``. An automatic
fallback from the first choice warns once (:class:`FallbackWarning`). An explicit impl, as an
argument or through ``STYLEGAN_FAST_IMPL_<OP>`` / ``STYLEGAN_FAST_IMPL``, that cannot serve raises
``NotImplementedError`` listing every backend's reason.

Resolution reads only Python data (tables filled at import, ``os.environ``, tensor metadata),
so ``torch.compile(fullgraph=True)`` traces through it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import warnings
from collections.abc import Mapping

import torch

from . import _library, _preferences
from .ops._common import triton_interpreting

BACKENDS = ("ref", "cpp", "triton", "cuda")
IMPLS = ("auto", *BACKENDS)


class FallbackWarning(UserWarning):
    """``impl="auto"`` could not use its first choice of backend and fell back."""


@dataclasses.dataclass(frozen=True)
class OpKernels:
    """The registered ops that carry an op's kernels, per backend (``None``: not implemented).

    ``cpp`` and ``cuda`` name the same ``_C`` op (CPU and CUDA dispatch keys of one schema);
    ``triton`` names the ``*_triton`` op.
    """

    name: str
    extension_op: str | None
    triton_op: str | None
    # impl="auto" on CPU tensors tries these in order (then ref); on CUDA tensors the order
    # comes from the preference table (_preferences.TABLE).
    cpu_preference: tuple[str, ...] = ("cpp",)


_OPS: dict[str, OpKernels] = {}
# (op, backend, device type) -> reason the backend cannot serve that device, None if it can.
# Filled once by freeze() after every op is registered: probing the dispatcher is not
# traceable by Dynamo, reading this dict is.
_STATIC_REASONS: dict[tuple[str, str, str], str | None] = {}
_FROZEN = False
_WARNED: set[tuple[str, str, str]] = set()
_TRITON_INSTALLED = importlib.util.find_spec("triton") is not None


_IMPL_ENV: dict[str, str] = {}  # op -> its STYLEGAN_FAST_IMPL_<OP> variable's name
_CPU_ORDER: dict[str, tuple[str, ...]] = {}
# An op the table has no entry for (a new op before its first GPU run) tries this.
_DEFAULT_CUDA_ORDER = ("cuda", "triton")


def register(op: OpKernels) -> None:
    """Adds ``op`` (``ops/_registry.define_op`` calls this); only before :func:`freeze`."""
    if _FROZEN:
        raise RuntimeError(
            f"stylegan_fast: op {op.name!r} was registered after _backend.freeze(): its "
            "backends' availability would be probed on every call, which torch.compile cannot "
            "trace. Import its module from stylegan_fast/ops/__init__.py, before freeze()."
        )
    _OPS[op.name] = op
    _IMPL_ENV[op.name] = f"STYLEGAN_FAST_IMPL_{op.name.upper()}"
    _CPU_ORDER[op.name] = (*op.cpu_preference, "ref")


def _static_reason(op: OpKernels, backend: str, device_type: str) -> str | None:
    ext = _library.EXTENSION
    if backend == "ref":
        return None
    if backend in ("cpp", "cuda"):
        wanted = "cpu" if backend == "cpp" else "cuda"
        if device_type != wanted:
            return f"runs {wanted.upper()} tensors only"
        if op.extension_op is None:
            return f"no {backend} kernel is implemented for {op.name}"
        if not ext.loaded:
            return f"stylegan_fast._C is not loaded: {ext.reason}"
        if not _library.has_kernel(op.extension_op, "CPU" if backend == "cpp" else "CUDA"):
            if backend == "cuda" and not ext.build_info.get("with_cuda", False):
                return (
                    "stylegan_fast._C was built without CUDA (no CUDA torch or nvcc at build time)"
                )
            return f"stylegan_fast._C has no {backend} kernel for {op.extension_op} (rebuild it)"
        return None
    if backend == "triton":
        if op.triton_op is None:
            return f"no Triton kernel is implemented for {op.name}"
        if not _TRITON_INSTALLED:
            return "triton is not installed (pip install triton)"
        if device_type not in ("cuda", "cpu"):
            return f"runs CUDA tensors, not {device_type}"
        return None
    raise ValueError(f"unknown backend {backend!r}")


def freeze() -> None:
    """Computes the availability table; called once all ops are registered (by
    ``stylegan_fast/ops/__init__.py``). Later registrations are refused."""
    global _FROZEN
    _FROZEN = True
    for op in _OPS.values():
        for backend in BACKENDS:
            for device_type in ("cpu", "cuda"):
                _STATIC_REASONS[(op.name, backend, device_type)] = _static_reason(
                    op, backend, device_type
                )


def _reason(op_name: str, backend: str, device: torch.device, op_reasons) -> str | None:
    key = (op_name, backend, device.type)
    if key in _STATIC_REASONS:
        reason = _STATIC_REASONS[key]
    else:  # a device type freeze() does not tabulate
        reason = _static_reason(_OPS[op_name], backend, device.type)
    cpu_triton = backend == "triton" and device.type == "cpu"
    if reason is None and cpu_triton and not triton_interpreting():
        reason = (
            "runs CUDA tensors; CPU tensors need TRITON_INTERPRET=1 set before importing triton"
        )
    if reason is None and op_reasons is not None:
        reason = op_reasons.get(backend)
    return reason


def requested_impl(op_name: str, impl: str) -> str:
    """The impl asked for: the argument, else STYLEGAN_FAST_IMPL_<OP>, else STYLEGAN_FAST_IMPL."""
    if impl == "auto":
        env = os.environ
        impl = env.get(_IMPL_ENV[op_name]) or env.get("STYLEGAN_FAST_IMPL") or "auto"
    if impl not in IMPLS:
        raise ValueError(f"{op_name}: impl must be one of {IMPLS}, got {impl!r}")
    return impl


def auto_order(
    op_name: str, device_type: str, layout: str = "nchw", size: str = "large"
) -> tuple[str, ...]:
    """The backends impl="auto" tries, in order, for ``device_type`` tensors of ``layout``
    and plane ``size`` class (see ``_preferences``; both matter on CUDA only)."""
    if device_type == "cpu":
        return _CPU_ORDER.get(op_name, ("ref",))
    if device_type != "cuda" or op_name not in _OPS:
        return ("ref",)
    entry = _preferences.TABLE.get((op_name, layout, size))
    return (*(entry.order if entry is not None else _DEFAULT_CUDA_ORDER), "ref")


def resolve(
    op_name: str,
    impl: str,
    device: torch.device,
    op_reasons: Mapping[str, str | None] | None = None,
    x: torch.Tensor | None = None,
) -> str:
    """The backend that serves a call of ``op_name`` on ``device``.

    ``op_reasons`` maps a backend to why it cannot serve these particular arguments (a filter
    it has no kernel for, say); backends absent from it are limited only by availability.
    ``x``, the op's main input, picks the preference table's entry (layout and plane size) on
    CUDA; without it the ``nchw``/``large`` entry applies.
    """
    requested = requested_impl(op_name, impl)
    if requested != "auto":
        reason = _reason(op_name, requested, device, op_reasons)
        if reason is None:
            return requested
        raise NotImplementedError(
            f"{op_name}: impl={requested!r} cannot serve these inputs ({device.type} tensors): "
            f"{reason}.\n" + describe(op_name, device, op_reasons)
        )
    if x is not None and device.type == "cuda":
        order = auto_order(
            op_name, device.type, _preferences.layout_of(x), _preferences.size_class(x)
        )
    else:
        order = auto_order(op_name, device.type)
    for backend in order:
        if _reason(op_name, backend, device, op_reasons) is None:
            if backend != order[0]:
                _warn_fallback(op_name, device, order[0], backend, op_reasons)
            return backend
    raise AssertionError("the reference backend always serves")  # pragma: no cover


def describe(op_name: str, device: torch.device, op_reasons=None, indent: str = "  ") -> str:
    """One line per backend: 'available' or the reason it cannot serve."""
    lines = []
    for backend in BACKENDS:
        reason = _reason(op_name, backend, device, op_reasons)
        lines.append(f"{indent}{backend}: {'available' if reason is None else reason}")
    return "\n".join(lines)


def _warn_fallback(op_name, device, wanted, chosen, op_reasons) -> None:
    if torch.compiler.is_compiling():
        return
    key = (op_name, device.type, chosen)
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(
        f"stylegan_fast: {op_name} on {device.type} tensors uses impl={chosen!r} because "
        f"impl={wanted!r} cannot serve them: {_reason(op_name, wanted, device, op_reasons)}. "
        "Pass impl= or set STYLEGAN_FAST_IMPL to choose explicitly.",
        FallbackWarning,
        stacklevel=4,
    )


def available_backends(op_name: str, device: torch.device | str) -> list[str]:
    """Backends that can serve ``op_name`` on ``device`` for generic arguments."""
    device = torch.device(device)
    return [b for b in BACKENDS if _reason(op_name, b, device, None) is None]


def registered_ops() -> list[str]:
    return list(_OPS)


def op_kernels(op_name: str) -> OpKernels:
    return _OPS[op_name]
