"""Helpers shared by the test suite and the benchmarks: random inputs in every layout,
the tolerance table, comparison against a float64 reference, and the R1 double-backward
pattern. Public so that users can run the same parity checks on their own layers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

from . import _backend

LAYOUTS = ("contiguous", "channels_last", "noncontiguous")
FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)

# Unit roundoff (half an ulp at 1.0) per dtype.
UNIT_ROUNDOFF = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
}

# (rtol, atol relative to the expectation's RMS) against a float64 reference, for a kernel
# that computes in float32 (float64 for float64) and rounds each output once. float32 gets
# headroom for reductions and transcendental functions; fp16/bf16 allow two roundings.
TOLERANCES = {
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (4 * UNIT_ROUNDOFF[torch.float16], 2 * UNIT_ROUNDOFF[torch.float16]),
    torch.bfloat16: (4 * UNIT_ROUNDOFF[torch.bfloat16], 2 * UNIT_ROUNDOFF[torch.bfloat16]),
}


def make_tensor(
    shape: Sequence[int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    layout: str = "contiguous",
    generator: torch.Generator | None = None,
    scale: float = 1.0,
    requires_grad: bool = False,
) -> torch.Tensor:
    """Standard-normal values times ``scale`` (never zeros), in ``layout``.

    ``layout``: ``contiguous``; ``channels_last`` (4-D only, others stay contiguous);
    ``noncontiguous``: a strided view (every other element of the last axis of a tensor
    twice as wide), so kernels must handle or copy non-dense input.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    shape = list(shape)
    full = list(shape)
    if layout == "noncontiguous" and full:
        full[-1] *= 2
    values = torch.randn(full, dtype=torch.float64, generator=generator) * scale
    t = values.to(dtype=dtype, device=device)
    if layout == "noncontiguous" and shape:
        t = t[..., ::2]
    elif layout == "channels_last" and len(shape) == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_(requires_grad)


def is_layout(t: torch.Tensor, layout: str) -> bool:
    """Whether ``t`` is stored as ``layout`` says (what a kernel's output must keep)."""
    if layout == "channels_last" and t.ndim == 4:
        return t.is_contiguous(memory_format=torch.channels_last)
    return t.is_contiguous()


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``||actual - expected|| / ||expected||`` in float64 (finite entries only)."""
    a = actual.detach().to(torch.float64)
    e = expected.detach().to(torch.float64)
    finite = torch.isfinite(e)
    num = (a - e)[finite].norm().item()
    den = e[finite].norm().item()
    return num / den if den > 0 else num


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    dtype: torch.dtype | None = None,
    what: str = "output",
    slack: float = 1.0,
) -> None:
    """Asserts ``actual`` (any dtype) matches a float64 ``expected`` within ``dtype``'s
    tolerance times ``slack``.

    NaN never passes: NaN and ±Inf must sit at exactly the positions of the expectation.
    Finite entries must satisfy ``|a - e| <= atol * rms(e) + rtol * |e|``.
    """
    dtype = actual.dtype if dtype is None else dtype
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {list(actual.shape)} != {list(expected.shape)}")
    a = actual.detach().to(device="cpu", dtype=torch.float64)
    e = expected.detach().to(device="cpu", dtype=torch.float64)
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    if not torch.equal(nan_a, nan_e):
        raise AssertionError(
            f"{what}: NaN at {int((nan_a & ~nan_e).sum())} positions where the reference is "
            f"not NaN, and missing at {int((nan_e & ~nan_a).sum())} where it is"
        )
    inf_a, inf_e = torch.isinf(a), torch.isinf(e)
    if not torch.equal(inf_a, inf_e) or not torch.equal(a[inf_a], e[inf_e]):
        raise AssertionError(f"{what}: infinities differ from the reference")
    finite = torch.isfinite(e)
    if not finite.any():
        return
    rtol, atol = TOLERANCES[dtype]
    rtol, atol = rtol * slack, atol * slack
    ef, af = e[finite], a[finite]
    rms = ef.square().mean().sqrt().item()
    err = (af - ef).abs()
    bound = atol * max(rms, 1e-30) + rtol * ef.abs()
    bad = err > bound
    if bad.any():
        worst = int(torch.argmax(err - bound))
        raise AssertionError(
            f"{what} ({dtype}): {int(bad.sum())} of {ef.numel()} elements outside "
            f"rtol={rtol:.2e}, atol={atol:.2e}*rms; worst |diff|={err[worst].item():.3e} at "
            f"expected={ef[worst].item():.6e} (actual {af[worst].item():.6e}); "
            f"relative error {relative_error(af, ef):.3e}"
        )


def to_float64(values):
    """float64 detached copies of tensors (None stays None), keeping requires_grad."""
    out = []
    for t in values:
        if t is None:
            out.append(None)
        else:
            out.append(t.detach().to(torch.float64).requires_grad_(t.requires_grad))
    return out


def forward_backward(
    fn: Callable[..., torch.Tensor],
    inputs: Sequence[torch.Tensor | None],
    grad_output: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """Runs ``out = fn(*inputs)`` and backpropagates ``grad_output``; returns ``out`` and the
    gradient of each input (None where the input is None or does not require grad)."""
    out = fn(*inputs)
    wrt = [t for t in inputs if t is not None and t.requires_grad]
    grads = iter(torch.autograd.grad(out, wrt, grad_output.to(out.dtype), allow_unused=True))
    return out, [next(grads) if t is not None and t.requires_grad else None for t in inputs]


def r1_pattern(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor | None], wrt: int = 0
) -> list[torch.Tensor | None]:
    """The double backward R1 regularisation performs, on ``out = fn(*inputs)``:
    ``g = grad(out.sum(), inputs[wrt], create_graph=True)``, then the gradients of
    ``out.square().mean() + g.square().sum()`` with respect to every input that requires grad.
    """
    out = fn(*inputs)
    (g,) = torch.autograd.grad(out.sum(), inputs[wrt], create_graph=True)
    loss = out.float().square().mean() + g.float().square().sum()
    wrt_all = [t for t in inputs if t is not None and t.requires_grad]
    grads = iter(torch.autograd.grad(loss, wrt_all, allow_unused=True))
    return [next(grads) if t is not None and t.requires_grad else None for t in inputs]


def implemented_backends(op_name: str, device_type: str) -> list[str]:
    """The backends that have kernels for ``op_name`` on ``device_type`` (whether or not
    they are available here): what a test suite must exercise on that device."""
    kernels = _backend.op_kernels(op_name)
    out = ["ref"]
    if device_type == "cpu" and kernels.extension_op is not None:
        out.append("cpp")
    if kernels.triton_op is not None:
        out.append("triton")
    if device_type == "cuda" and kernels.extension_op is not None:
        out.append("cuda")
    return out


def require_backend(op_name: str, impl: str, device: torch.device | str) -> None:
    """Raises AssertionError with the reason when ``impl`` cannot serve ``op_name`` on
    ``device``: a backend with kernels must be tested, never silently skipped."""
    device = torch.device(device)
    if impl not in _backend.available_backends(op_name, device):
        raise AssertionError(
            f"{op_name}: impl={impl!r} has kernels but cannot run here:\n"
            + _backend.describe(op_name, device)
        )


# aten ops that copy a device value to the host (or size an output by data): inside a CUDA
# graph capture they fail, and in a training loop each one stalls the CPU until the GPU
# catches up. `.item()`, `bool(t)` and `int(t)` all reach _local_scalar_dense.
HOST_SYNC_OPS = frozenset(
    {"_local_scalar_dense", "nonzero", "equal", "masked_select", "_unique2", "unique_dim"}
)


class HostSyncError(RuntimeError):
    """An op that syncs with the host ran inside :func:`forbid_host_syncs`."""


def forbid_host_syncs():
    """A context manager that raises :class:`HostSyncError` on any op of
    :data:`HOST_SYNC_OPS`, forward or backward. It runs on CPU tensors too, so a CPU test can
    prove that code is capturable in a CUDA graph (no device-to-host copy) without a GPU."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _ForbidHostSyncs(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in HOST_SYNC_OPS:
                raise HostSyncError(f"host sync: aten.{name} ran (a .item(), bool() or int()?)")
            return func(*args, **(kwargs or {}))

    return _ForbidHostSyncs()


def csrc_registrations(source: str, key: str) -> set[str]:
    """The schemas a C++/CUDA source registers for dispatch ``key`` (``"CPU"``, ``"CUDA"``):
    the ``m.impl("<schema>", ...)`` calls of its ``TORCH_LIBRARY_IMPL(stylegan_fast, <key>, m)``
    blocks (braces matched), plus ``<op>_fwd`` and ``<op>_bwd`` for each
    ``STYLEGAN_FAST_REGISTER_FWD_BWD(<op>, <key>, ...)`` (csrc/registration.h)."""
    found = set()
    header = re.compile(rf"TORCH_LIBRARY_IMPL\(\s*stylegan_fast\s*,\s*{key}\s*,\s*(\w+)\s*\)\s*\{{")
    for match in header.finditer(source):
        depth, end = 1, match.end()
        while depth and end < len(source):
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            end += 1
        block = source[match.end() : end]
        found |= set(re.findall(rf"\b{match.group(1)}\.impl\(\s*\"(\w+)\"", block))
    macro = re.compile(rf"^STYLEGAN_FAST_REGISTER_FWD_BWD\(\s*(\w+)\s*,\s*{key}\s*,", re.M)
    for op in macro.findall(source):
        found |= {f"{op}_fwd", f"{op}_bwd"}
    return found
