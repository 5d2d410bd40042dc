"""How many kernels a model step launches, counted at the dispatcher (no GPU needed).

:class:`DispatchCounter` is a ``TorchDispatchMode``: it sees every aten op below autograd
(forward ops, the backward formulas autograd runs, optimizer updates) and our
``stylegan_fast::*`` custom ops as single calls. A GPU run launches about one kernel per
aten op that computes something (views, allocations and no-op ``contiguous`` launch none;
some aten ops launch two or more, e.g. multi-pass reductions, so this is an estimate) plus,
per ``stylegan_fast`` op call, the launches of the backend that serves it. The second number
comes from :func:`triton_launches`: each distinct custom-op call is replayed on its
``*_triton`` twin with CPU tensors posing as CUDA and the Triton interpreter recording
launches without running them, i.e. the launches of the GPU plans (the CUDA backend's own
kernel counts are in ``csrc/`` and not measured here).

:func:`generator_forward` and :func:`train_step` count one G forward / one training step
(``bench.e2e.workloads.train_step_call``: D on reals + fakes, R1, G step, Adam) on the
``auto`` path. On a CPU machine ``auto`` resolves to the C++ kernels; the ops a GPU run
dispatches are the same (the backend is chosen below the level this counts: one
``stylegan_fast`` op call either way) except for the optimizer: ``torch.optim.Adam`` runs a
per-parameter loop on CPU tensors (8 aten ops per parameter and a host read of its CPU step
count) but its ``foreach`` path on CUDA ones (8 multi-tensor ops per optimizer, each a kernel
per chunk of tensors), which :func:`adam_foreach` counts. ``.item()`` calls are reported by
origin: the optimizer's read CPU step counters (no GPU sync), the model's would wait for the GPU.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

NAMESPACE = "stylegan_fast"
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_BENCH_DIR = str(Path(__file__).resolve().parent)
_OPTIM_DIR = str(Path(torch.optim.__file__).resolve().parent)
# The Triton interpreter copies each launch's tensors back with aten copy_ (a no-op for CPU
# tensors, and no part of a GPU launch): ops dispatched from its code are not counted.
_TRITON_SPEC = importlib.util.find_spec("triton")
_TRITON_DIR = (
    str(Path(_TRITON_SPEC.origin).parent) if _TRITON_SPEC and _TRITON_SPEC.origin else None
)

# aten ops that allocate or change metadata only: no kernel on a GPU.
_NO_KERNEL = {
    "aten::empty.memory_format",
    "aten::empty_strided",
    "aten::empty_like",
    "aten::new_empty",
    "aten::new_empty_strided",
    "aten::resize_",
    "aten::set_.source_Storage",
    "aten::set_.source_Storage_storage_offset",
    "aten::set_.source_Tensor",
    "aten::lift_fresh",
    "aten::detach",
    "aten::alias",
    "aten::_local_scalar_dense",  # .item(): a device-to-host copy and sync, counted apart
}
# In-place ops that overwrite their first argument without reading it.
_WRITE_ONLY = (
    "fill_", "zero_", "copy_", "normal_", "uniform_", "bernoulli_", "random_", "exponential_",
)  # fmt: skip


@dataclasses.dataclass
class OpCall:
    """One dispatched op. ``kernel``: whether a GPU would launch a kernel for it (custom ops:
    True; their launch count is separate). ``bytes``: its inputs read once plus its outputs
    written once (an estimate of an aten kernel's traffic; a custom op's minimum).
    ``origin``: the innermost code on the Python stack that is ours, the optimizer's or
    Triton's: "package" (stylegan_fast outside stylegan_fast/bench: an op's launcher, autograd
    formula or reference double backward; our models), "optim" (torch.optim), "interpreter"
    (the Triton interpreter), or "other" (the caller; autograd's C++ formulas for aten ops).
    ``args``: custom ops only, the arguments described for :func:`triton_launches`."""

    name: str
    kernel: bool
    bytes: int
    origin: str
    sync: bool = False
    args: tuple | None = None
    kwargs: dict | None = None


def _span_bytes(t: torch.Tensor) -> int:
    """Bytes a kernel touches in ``t``: its distinct elements (a broadcast is read once)."""
    if t.numel() == 0:
        return 0
    span = 1 + sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride()))
    return min(span, t.numel()) * t.element_size()


def _storage_key(t: torch.Tensor):
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())


def _tensors(tree) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(tree)
    return [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A tensor argument of a recorded custom-op call, enough to make another like it."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype

    def make(self) -> torch.Tensor:
        return torch.empty_strided(self.shape, self.stride, dtype=self.dtype)


def _describe(value):
    return tree_map(
        lambda v: (
            TensorSpec(tuple(v.shape), tuple(v.stride()), v.dtype)
            if isinstance(v, torch.Tensor)
            else v
        ),
        value,
    )


def _origin() -> str:
    """Who dispatched the op, from the innermost frame of ours or torch.optim's on the stack:
    "package" means one of our ops' implementation (a launcher, an autograd formula, the
    reference double backward) or our models, not the code measuring them; "interpreter" the
    Triton interpreter's own bookkeeping."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if _TRITON_DIR is not None and filename.startswith(_TRITON_DIR):
            return "interpreter"
        if filename.startswith(_OPTIM_DIR):
            return "optim"
        if filename.startswith(_PACKAGE_DIR) and not filename.startswith(_BENCH_DIR):
            return "package"
        frame = frame.f_back
    return "other"


class DispatchCounter(TorchDispatchMode):
    """Records every op dispatched inside ``with DispatchCounter() as counter:``.

    ``enter_custom_ops``: also record the aten ops our custom ops' kernels dispatch (a
    launcher's ``contiguous`` copy, its output allocations); by default a custom op is one
    record and its insides are not seen. ``keep_args``: keep each custom op's arguments (as
    :class:`TensorSpec`) for :func:`triton_launches`.
    """

    def __init__(self, enter_custom_ops: bool = False, keep_args: bool = False):
        super().__init__()
        self.enter_custom_ops = enter_custom_ops
        self.keep_args = keep_args
        self.calls: list[OpCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.name()
        origin = _origin()
        if func.namespace == NAMESPACE:
            if self.enter_custom_ops:
                # Below the Python key, with this mode pushed again: the kernel's own aten ops
                # reach __torch_dispatch__ (calling func itself would recurse into this one).
                device = next((t.device for t in _tensors((args, kwargs))), None)
                keys = torch._C.DispatchKeySet(
                    torch._C.DispatchKey.CUDA if device.type == "cuda" else torch._C.DispatchKey.CPU
                )
                with self:
                    out = func.redispatch(keys, *args, **kwargs)
            else:
                out = func(*args, **kwargs)
            moved = sum(_span_bytes(t) for t in _tensors((args, kwargs, out)))
            self.calls.append(
                OpCall(
                    name,
                    True,
                    moved,
                    origin,
                    args=_describe(args) if self.keep_args else None,
                    kwargs=_describe(kwargs) if self.keep_args else None,
                )
            )
            return out
        out = func(*args, **kwargs)
        self.calls.append(self._aten_call(func, name, args, kwargs, out, origin))
        return out

    @staticmethod
    def _aten_call(func, name, args, kwargs, out, origin) -> OpCall:
        if name == "aten::_local_scalar_dense":
            return OpCall(name, False, 0, origin, sync=True)
        if func.namespace not in ("aten", "prims") or name in _NO_KERNEL:
            # profiler::_record_function_* and other bookkeeping ops: no kernel.
            return OpCall(name, False, 0, origin)
        if torch.Tag.inplace_view in func.tags:
            return OpCall(name, False, 0, origin)
        inputs = _tensors((args, kwargs))
        outputs = _tensors(out)
        written = {
            i
            for i, a in enumerate(func._schema.arguments)
            if a.alias_info is not None and a.alias_info.is_write
        }
        if not written and outputs:
            input_storages = {t.untyped_storage().data_ptr() for t in inputs}
            if all(o.untyped_storage().data_ptr() in input_storages for o in outputs):
                # Returns (a view of) an input: views, and ops that may alias, when they do
                # (`contiguous` of a contiguous tensor, `to` of the same dtype, a reshape that is
                # a view). The schema cannot tell: `contiguous` is declared a view either way.
                return OpCall(name, False, 0, origin)
        write_only = name.split("::")[1].split(".")[0].endswith(_WRITE_ONLY)
        read = {}
        for i, value in enumerate(args):
            if isinstance(value, torch.Tensor) and not (i in written and write_only):
                read[_storage_key(value)] = _span_bytes(value)
        for key, value in kwargs.items():
            if isinstance(value, torch.Tensor) and key != "out":
                read[_storage_key(value)] = _span_bytes(value)
        moved = sum(read.values()) + sum(_span_bytes(o) for o in outputs)
        return OpCall(name, True, moved, origin)

    # -- summaries ------------------------------------------------------------------------------

    def aten_kernels(self, origin: str | None = None) -> list[OpCall]:
        """The aten ops that launch a kernel (from ``origin`` only, if given)."""
        return [
            c
            for c in self.calls
            if c.kernel
            and not c.name.startswith(f"{NAMESPACE}::")
            and (origin is None or c.origin == origin)
        ]

    def custom_calls(self) -> list[OpCall]:
        return [c for c in self.calls if c.name.startswith(f"{NAMESPACE}::")]


def _triton_twin(name: str):
    """``stylegan_fast::<op>`` -> the ``<op>_triton`` overload (None if there is none)."""
    base = name.split("::")[1].split(".")[0]
    if base.endswith("_triton"):
        packet = getattr(torch.ops.stylegan_fast, base)
    elif hasattr(torch.ops.stylegan_fast, base + "_triton"):
        packet = getattr(torch.ops.stylegan_fast, base + "_triton")
    else:
        return None
    return packet.default


def _signature(call: OpCall):
    return (call.name, repr(call.args), repr(call.kwargs))


def triton_launches(calls: list[OpCall]) -> dict[tuple, list[str]]:
    """The Triton kernels each distinct custom-op call in ``calls`` launches with its GPU
    plan: ``{signature: [kernel, ...]}``. Replays the call on its ``*_triton`` twin with empty
    tensors of the recorded shapes, CPU tensors posing as CUDA, and the interpreter recording
    launches without running them (so nothing is computed and it takes milliseconds).
    Needs ``TRITON_INTERPRET=1`` and calls recorded with ``keep_args=True``."""
    from . import traffic

    def make(value):
        return tree_map(lambda v: v.make() if isinstance(v, TensorSpec) else v, value)

    result: dict[tuple, list[str]] = {}
    with traffic.posing_as_cuda(), outputs_not_poisoned():
        for call in calls:
            key = _signature(call)
            if key in result:
                continue
            twin = _triton_twin(call.name)
            if twin is None:
                result[key] = []
                continue
            with traffic.count_traffic(execute=False) as trace:
                twin(*make(call.args), **make(call.kwargs))
            result[key] = [launch.short_name for launch in trace.launches]
    return result


@contextlib.contextmanager
def outputs_not_poisoned():
    """Kernel outputs are not NaN-filled while counting: the test suite's poisoning
    (STYLEGAN_FAST_POISON_OUTPUTS=1) adds a fill per output that a real run does not make."""
    saved = os.environ.get("STYLEGAN_FAST_POISON_OUTPUTS")
    os.environ["STYLEGAN_FAST_POISON_OUTPUTS"] = "0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["STYLEGAN_FAST_POISON_OUTPUTS"]
        else:
            os.environ["STYLEGAN_FAST_POISON_OUTPUTS"] = saved


# ---------------------------------------------------------------------------------------------
# Workloads


@dataclasses.dataclass
class Counts:
    """The dispatches of one workload call, summarised."""

    label: str
    calls: list[OpCall]
    custom_launches: dict[tuple, list[str]] | None = None

    @property
    def dispatched(self) -> int:
        return len(self.calls)

    @property
    def aten_kernels(self) -> int:
        return sum(1 for c in self.calls if c.kernel and not c.name.startswith(f"{NAMESPACE}::"))

    @property
    def syncs(self) -> int:
        return sum(1 for c in self.calls if c.sync)

    def custom_by_op(self) -> collections.Counter:
        return collections.Counter(c.name for c in self.calls if c.name.startswith(NAMESPACE))

    def aten_by_op(self, kernels_only: bool = True) -> collections.Counter:
        return collections.Counter(
            c.name
            for c in self.calls
            if not c.name.startswith(NAMESPACE) and (c.kernel or not kernels_only)
        )

    def triton_kernel_launches(self) -> int | None:
        if self.custom_launches is None:
            return None
        return sum(
            len(self.custom_launches[_signature(c)])
            for c in self.calls
            if c.name.startswith(NAMESPACE)
        )

    def triton_launches_by_op(self) -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        for c in self.calls:
            if c.name.startswith(NAMESPACE) and self.custom_launches is not None:
                counts[c.name] += len(self.custom_launches[_signature(c)])
        return counts


def count(label: str, fn: Callable[[], object], replay: bool = True) -> Counts:
    """Counts the ops ``fn()`` dispatches (after one uncounted warm-up call, so lazy
    initialisation is not counted) and, with ``replay``, the Triton launches of its custom
    ops' GPU plans."""
    fn()
    with DispatchCounter(keep_args=replay) as counter:
        fn()
    counts = Counts(label, counter.calls)
    if replay:
        counts.custom_launches = triton_launches(counter.custom_calls())
    return counts


def generator_forward(preset: str = "stylegan-256", batch: int = 2, impl: str = "auto") -> Counts:
    """One G forward (mapping + synthesis, fresh latents, noise_mode="random", no grad)."""
    from ..models import Generator

    torch.manual_seed(0)
    G = Generator.from_preset(preset, impl=impl).eval().requires_grad_(False)
    z = torch.randn(batch, G.z_dim)

    def forward():
        with torch.no_grad():
            return G(z, noise_mode="random")

    return count(f"G forward, {preset}, batch {batch}", forward)


def train_step(preset: str = "stylegan-256", batch: int = 2, provider: str = "auto") -> Counts:
    """One training step (``train_step_call``: D step on reals + fakes with R1 every step,
    Adam, G step, Adam), fp32, NCHW, on the CPU."""
    from .e2e.workloads import train_step_call

    step = train_step_call(provider, preset, batch, "fp32", False, torch.device("cpu"), r1_every=1)
    rep = iter(range(1_000_000))
    return count(f"train step, {preset}, batch {batch}, R1 every step", lambda: step(next(rep)))


def optimizer_kernels(counts: Counts) -> int:
    """Aten kernels dispatched from torch.optim (Adam's updates)."""
    return sum(1 for c in counts.calls if c.kernel and c.origin == "optim")


def adam_foreach(preset: str = "stylegan-256") -> tuple[int, int, collections.Counter]:
    """One ``torch.optim.Adam(foreach=True)`` step over G's and D's parameters: ``(parameter
    tensors, dispatched ops that launch kernels, those ops by name)``. foreach is Adam's
    default for CUDA parameters; on CPU tensors it runs the per-parameter loop, so a CPU
    train step counts that loop instead."""
    from ..models import Discriminator, Generator

    params = [
        *Generator.from_preset(preset).parameters(),
        *Discriminator.from_preset(preset).parameters(),
    ]
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer = torch.optim.Adam(params, lr=1e-3, betas=(0.0, 0.99), foreach=True)
    optimizer.step()  # creates the state
    with DispatchCounter() as counter:
        optimizer.step()
    kernels = [c for c in counter.calls if c.kernel]
    return len(params), len(kernels), collections.Counter(c.name for c in kernels)


def report(counts: Counts, top: int = 10) -> str:
    """A plain-text summary of one :class:`Counts`."""
    lines = [f"{counts.label}:"]
    custom = counts.custom_by_op()
    aten = counts.aten_by_op()
    triton = counts.triton_kernel_launches()
    lines.append(
        f"  dispatched ops: {counts.dispatched} (aten ops that launch a kernel on a GPU: "
        f"{counts.aten_kernels}; stylegan_fast op calls: {sum(custom.values())}; host syncs "
        f"(.item()): {counts.syncs})"
    )
    if triton is not None:
        lines.append(
            f"  Triton kernel launches of those stylegan_fast calls (GPU plans): {triton}; "
            f"estimated GPU kernel launches on the Triton path: {counts.aten_kernels + triton}"
        )
    by_origin = collections.Counter(c.origin for c in counts.calls if c.kernel and not
                                    c.name.startswith(NAMESPACE))  # fmt: skip
    syncs = collections.Counter(c.origin for c in counts.calls if c.sync)
    lines.append(
        "  aten kernels by origin: "
        + ", ".join(f"{origin} {n}" for origin, n in by_origin.most_common())
        + (
            "; .item() syncs by origin: " + ", ".join(f"{o} {n}" for o, n in syncs.items())
            if syncs
            else ""
        )
    )
    launches_by_op = counts.triton_launches_by_op()
    lines.append("  stylegan_fast op calls (Triton launches):")
    for name, n in custom.most_common():
        lines.append(f"    {n:5d}  {name}  ({launches_by_op.get(name, 0)})")
    lines.append(f"  aten ops launching a kernel, top {top} of {len(aten)}:")
    for name, n in aten.most_common(top):
        lines.append(f"    {n:5d}  {name}")
    return "\n".join(lines)
