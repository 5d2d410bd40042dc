"""Memory traffic and launch counts of Triton kernels, counted by the Triton interpreter.

With ``TRITON_INTERPRET=1`` every ``tl.load`` / ``tl.store`` of a kernel is a NumPy call in
``triton.runtime.interpreter``: the builder's ``create_masked_load`` / ``create_masked_store``
receive the lane addresses and the mask. :func:`count_traffic` wraps those two methods (and the
launch, ``GridExecutor.__call__``) and returns, per kernel launch, the kernel, its grid and the
bytes loaded and stored with masked-off lanes excluded, split by the tensor arguments the
addresses fall in. Nothing here reads a kernel's source or its arguments' names to count: a
kernel that changes its tiles, plans or parameters is counted the same way.

Two counts per launch and tensor:

- ``loaded`` / ``stored``: every active lane of every access (a tile loaded twice counts
  twice). On a GPU the repeats may hit L1/L2, so this is an upper bound on DRAM traffic for
  the coalesced, full-line accesses these kernels make.
- ``loaded_unique`` / ``stored_unique``: the distinct bytes a launch touched. A launch must
  fetch each at least once unless an earlier launch left it in L2, so the sum over a call's
  launches is the compulsory traffic of its plan (a second pass over x counts again).

Routing (checked, not assumed): in Triton 3.2-3.9 ``create_load`` / ``create_store``, the
block-pointer loads/stores (``create_tensor_pointer_*``, 3.6 and older) and the descriptor
loads/stores (``create_descriptor_*``) all call ``create_masked_load`` /
``create_masked_store``. Each of them is wrapped too, and raises if a version stops routing
through the masked ones (the count would silently miss it). Atomics (``create_atomic_rmw`` /
``create_atomic_cas``; none of our kernels uses them) count as a load and a store.

:func:`posing_as_cuda` makes CPU tensors report ``is_cuda`` and stubs the ``torch.cuda``
queries a launcher makes, so the launchers choose their GPU plans (tiles, grids, warps) while
the interpreter runs them on the CPU: the traffic of the plans an H100 would run.

Requires ``TRITON_INTERPRET=1`` in the environment before triton is first imported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import types
from collections.abc import Iterator

import numpy as np
import torch

# H100 SXM (sm_90): what the launchers' grid and occupancy computations may read.
H100_PROPERTIES = dict(
    name="NVIDIA H100 80GB HBM3 (posed by stylegan_fast.bench.traffic)",
    major=9,
    minor=0,
    multi_processor_count=132,
    regs_per_multiprocessor=65536,
    max_threads_per_multi_processor=2048,
    max_threads_per_block=1024,
    warp_size=32,
    shared_memory_per_multiprocessor=233472,
    shared_memory_per_block=49152,
    shared_memory_per_block_optin=232448,
    L2_cache_size=50 * 2**20,
    total_memory=80 * 2**30,
    is_integrated=False,
    is_multi_gpu_board=False,
)


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


def _total(name: str, parts: str, extra: str | None = None) -> property:
    """A read-only property: ``name`` summed over the items of ``self.<parts>``, plus
    ``self.<extra>`` when given (bytes, an int)."""

    def total(self) -> int:
        parts_total = sum(getattr(part, name) for part in getattr(self, parts))
        return parts_total + (getattr(self, extra) if extra else 0)

    return property(total, doc=f"bytes: {name} summed over {parts}")


@dataclasses.dataclass
class TensorTraffic:
    """One launch's accesses to one tensor argument's storage (bytes)."""

    ptr: int  # the storage's first byte
    nbytes: int  # the storage's size
    args: tuple[str, ...]  # the kernel parameters that received it (several may share one)
    loaded: int = 0
    stored: int = 0
    loaded_unique: int = 0
    stored_unique: int = 0


@dataclasses.dataclass
class Launch:
    """One kernel launch: its kernel (``module.name``), grid, and bytes by tensor argument.
    ``unknown_*``: bytes at addresses outside every tensor argument (a kernel bug)."""

    kernel: str
    grid: tuple[int, int, int]
    tensors: list[TensorTraffic]
    executed: bool = True
    unknown_loaded: int = 0
    unknown_stored: int = 0

    loaded = _total("loaded", "tensors", "unknown_loaded")
    stored = _total("stored", "tensors", "unknown_stored")
    loaded_unique = _total("loaded_unique", "tensors")
    stored_unique = _total("stored_unique", "tensors")

    @property
    def short_name(self) -> str:
        return self.kernel.rsplit(".", 1)[-1]


@dataclasses.dataclass
class Trace:
    """The launches made inside one :func:`count_traffic` block, in order."""

    launches: list[Launch] = dataclasses.field(default_factory=list)

    loaded = _total("loaded", "launches")
    stored = _total("stored", "launches")
    loaded_unique = _total("loaded_unique", "launches")
    stored_unique = _total("stored_unique", "launches")

    def by_storage(self, t: torch.Tensor) -> dict[str, int]:
        """Bytes of ``t``'s storage summed over the launches: loaded, stored and the unique
        counts. Matched by the storage's address and size (a later tensor that reuses the
        address of a freed one with another size does not match)."""
        ptr, size = _storage_span(t)
        total = dict(loaded=0, stored=0, loaded_unique=0, stored_unique=0)
        for launch in self.launches:
            for tt in launch.tensors:
                if tt.ptr == ptr and tt.nbytes == size:
                    for key in total:
                        total[key] += getattr(tt, key)
        return total


def _storage_span(t: torch.Tensor) -> tuple[int, int]:
    storage = t.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


class _LaunchState:
    """Address ranges of one launch's tensor arguments and their access counters."""

    def __init__(self, kernel: str):
        self.kernel = kernel
        self.tensors: list[TensorTraffic] = []
        self.starts = np.zeros(0, dtype=np.uint64)
        self.load_maps: list[np.ndarray | None] = []
        self.store_maps: list[np.ndarray | None] = []
        self.unknown_loaded = 0
        self.unknown_stored = 0

    def add_tensor(self, t: torch.Tensor, arg: str) -> None:
        ptr, size = _storage_span(t)
        if size == 0:
            return
        for tt in self.tensors:
            if tt.ptr == ptr:
                if arg not in tt.args:
                    tt.args = (*tt.args, arg)
                tt.nbytes = max(tt.nbytes, size)
                return
        self.tensors.append(TensorTraffic(ptr, size, (arg,)))

    def seal(self) -> None:
        self.tensors.sort(key=lambda tt: tt.ptr)
        self.starts = np.array([tt.ptr for tt in self.tensors], dtype=np.uint64)
        self.load_maps = [None] * len(self.tensors)
        self.store_maps = [None] * len(self.tensors)

    def access(self, addresses: np.ndarray, mask, element_bytes: int, store: bool) -> None:
        addresses = np.asarray(addresses).astype(np.uint64, copy=False)
        if mask is not None:
            active = np.broadcast_to(np.asarray(mask, dtype=bool), addresses.shape)
            addresses = addresses[active]
        else:
            addresses = addresses.reshape(-1)
        if addresses.size == 0:
            return
        # The tensor each address falls in: the last storage starting at or before it.
        slot = np.searchsorted(self.starts, addresses, side="right").astype(np.int64) - 1
        maps = self.store_maps if store else self.load_maps
        inside_any = np.zeros(addresses.shape, dtype=bool)
        for i in np.unique(slot[slot >= 0]):
            tt = self.tensors[i]
            offsets = addresses[slot == i] - np.uint64(tt.ptr)
            inside = offsets + np.uint64(element_bytes) <= np.uint64(tt.nbytes)
            offsets = offsets[inside].astype(np.int64)
            inside_any[np.flatnonzero(slot == i)[inside]] = True
            if offsets.size == 0:
                continue
            if maps[i] is None:
                maps[i] = np.zeros(tt.nbytes, dtype=bool)
            # Byte granularity: accesses of different widths to one storage stay exact.
            maps[i][(offsets[:, None] + np.arange(element_bytes)).reshape(-1)] = True
            if store:
                tt.stored += offsets.size * element_bytes
            else:
                tt.loaded += offsets.size * element_bytes
        outside = int((~inside_any).sum()) * element_bytes
        if store:
            self.unknown_stored += outside
        else:
            self.unknown_loaded += outside

    def finish(self, grid, executed: bool = True) -> Launch:
        for tt, load_map, store_map in zip(self.tensors, self.load_maps, self.store_maps):
            tt.loaded_unique = int(load_map.sum()) if load_map is not None else 0
            tt.stored_unique = int(store_map.sum()) if store_map is not None else 0
        grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
        return Launch(
            self.kernel,
            grid,
            self.tensors,
            executed,
            self.unknown_loaded,
            self.unknown_stored,
        )


def _tensors_in(value):
    """The torch tensors an interpreter launch argument holds (tensors, Triton's
    TensorWrapper / TensorDescriptor, tuples of them)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors_in(item)
    else:
        base = getattr(value, "base", None)
        if isinstance(base, torch.Tensor):
            yield base


def _element_bytes(ptrs) -> int:
    # int1 is stored as a byte.
    return max(1, ptrs.get_element_ty().primitive_bitwidth // 8)


class _Counter:
    """The patches of one :func:`count_traffic` block."""

    def __init__(self, interpreter, trace: Trace, execute: bool):
        self.interpreter = interpreter
        self.trace = trace
        self.execute = execute
        self.state: _LaunchState | None = None
        self.masked_calls = 0

    # -- builder methods ----------------------------------------------------------------------

    def masked_load(self, original):
        counter = self

        @functools.wraps(original)
        def create_masked_load(builder, ptrs, mask, *args, **kwargs):
            counter.masked_calls += 1
            if counter.state is not None:
                counter.state.access(ptrs.data, mask.data, _element_bytes(ptrs), store=False)
            return original(builder, ptrs, mask, *args, **kwargs)

        return create_masked_load

    def masked_store(self, original):
        counter = self

        @functools.wraps(original)
        def create_masked_store(builder, ptrs, value, mask, *args, **kwargs):
            counter.masked_calls += 1
            if counter.state is not None:
                counter.state.access(ptrs.data, mask.data, _element_bytes(ptrs), store=True)
            return original(builder, ptrs, value, mask, *args, **kwargs)

        return create_masked_store

    def routed(self, original, name: str):
        """A load/store that must reach create_masked_load/store: raises if it does not."""
        counter = self

        @functools.wraps(original)
        def wrapper(builder, *args, **kwargs):
            before = counter.masked_calls
            result = original(builder, *args, **kwargs)
            if counter.masked_calls == before:
                raise RuntimeError(
                    f"stylegan_fast.bench.traffic: this triton's interpreter builder.{name} does "
                    "not call create_masked_load/create_masked_store, so its bytes would not be "
                    "counted; add a hook for it"
                )
            return result

        return wrapper

    def atomic(self, original, has_mask: bool):
        counter = self

        @functools.wraps(original)
        def wrapper(builder, *args, **kwargs):
            if counter.state is not None:
                # rmw: (op, ptr, val, mask, ...); cas: (ptr, cmp, val, ...)
                ptr = args[1] if has_mask else args[0]
                mask = args[3].data if has_mask else None
                for store in (False, True):
                    counter.state.access(ptr.data, mask, _element_bytes(ptr), store=store)
            return original(builder, *args, **kwargs)

        return wrapper

    # -- launches -----------------------------------------------------------------------------

    def grid_call(self, original):
        counter = self

        @functools.wraps(original)
        def __call__(executor, *args_dev, **kwargs):
            fn = executor.fn
            kernel = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', '?')}"
            state = _LaunchState(kernel)
            names = list(executor.arg_names)
            for i, value in enumerate(args_dev):
                for t in _tensors_in(value):
                    state.add_tensor(t, names[i] if i < len(names) else f"arg{i}")
            for key, value in kwargs.items():
                for t in _tensors_in(value):
                    state.add_tensor(t, key)
            state.seal()
            if counter.state is not None:
                raise RuntimeError("stylegan_fast.bench.traffic: nested kernel launches")
            counter.state = state
            try:
                result = original(executor, *args_dev, **kwargs)
            finally:
                counter.state = None
            grid = counter.interpreter.interpreter_builder.grid_dim
            counter.trace.launches.append(state.finish(grid))
            return result

        return __call__

    def record_only(self, original):
        """InterpretedFunction.run that records the launch (kernel, grid) without running it."""
        counter = self

        @functools.wraps(original)
        def run(function, *args, grid, warmup=False, **kwargs):
            if warmup:
                return None
            fn = function.fn
            kernel = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', '?')}"
            names = list(function.arg_names)
            state = _LaunchState(kernel)
            for i, value in enumerate(args):
                for t in _tensors_in(value):
                    state.add_tensor(t, names[i] if i < len(names) else f"arg{i}")
            state.seal()
            if callable(grid):
                grid = grid(dict(zip(names, args)) | kwargs)
            counter.trace.launches.append(state.finish(grid, executed=False))
            return None

        return run


def _patch(stack: contextlib.ExitStack, owner, name: str, make) -> None:
    original = owner.__dict__.get(name)
    if original is None:
        return
    setattr(owner, name, make(original))
    stack.callback(setattr, owner, name, original)


@contextlib.contextmanager
def count_traffic(execute: bool = True) -> Iterator[Trace]:
    """Counts the Triton launches made inside the block and the bytes each moves.

    Yields a :class:`Trace` that fills as kernels launch. ``execute=False`` records the
    launches (kernel, grid, tensor arguments) without running them: outputs stay unwritten,
    and bytes are zero. Not reentrant; single-threaded use.
    """
    if not interpreting():
        raise RuntimeError(
            "count_traffic needs TRITON_INTERPRET=1 in the environment before triton is imported"
        )
    import triton.runtime.interpreter as interpreter

    builder = type(interpreter.interpreter_builder)
    trace = Trace()
    counter = _Counter(interpreter, trace, execute)
    with contextlib.ExitStack() as stack:
        if execute:
            _patch(stack, builder, "create_masked_load", counter.masked_load)
            _patch(stack, builder, "create_masked_store", counter.masked_store)
            for name in (
                "create_load",
                "create_store",
                "create_tensor_pointer_load",
                "create_tensor_pointer_store",
                "create_descriptor_load",
                "create_descriptor_store",
            ):
                _patch(stack, builder, name, lambda f, name=name: counter.routed(f, name))
            _patch(stack, builder, "create_atomic_rmw", lambda f: counter.atomic(f, True))
            _patch(stack, builder, "create_atomic_cas", lambda f: counter.atomic(f, False))
            _patch(stack, interpreter.GridExecutor, "__call__", counter.grid_call)
        else:
            _patch(stack, interpreter.InterpretedFunction, "run", counter.record_only)
        yield trace


class _NoDevice:
    """Stands in for ``torch.cuda.device(...)`` / ``device_of(...)``: a do-nothing guard."""

    def __init__(self, *args, **kwargs):
        self.idx = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@contextlib.contextmanager
def posing_as_cuda(**properties) -> Iterator[types.SimpleNamespace]:
    """CPU tensors report ``is_cuda`` and ``torch.cuda`` answers as one H100 would, so the
    Triton launchers choose their GPU plans; the interpreter still runs the kernels on CPU.

    Patched (and restored on exit): ``torch.Tensor.is_cuda``;
    ``torch.cuda.get_device_properties`` (:data:`H100_PROPERTIES`, overridable by keyword);
    ``torch.cuda.device`` / ``device_of`` (no-op guards), ``current_device`` (0),
    ``set_device`` (no-op), ``device_count`` (1). ``torch.cuda.is_available`` is left alone, so
    code that would really touch a GPU (streams, events) is not tricked into it. Tensors
    keep ``device.type == "cpu"``: backend resolution still sees CPU tensors (impl="triton"
    needs TRITON_INTERPRET=1, as for any CPU tensor).
    """
    props = types.SimpleNamespace(**{**H100_PROPERTIES, **properties})
    had_is_cuda = "is_cuda" in torch.Tensor.__dict__
    saved_is_cuda = torch.Tensor.__dict__.get("is_cuda")
    cuda = torch.cuda
    names = ("get_device_properties", "device", "device_of", "current_device", "set_device")
    names += ("device_count",)
    saved = {name: getattr(cuda, name) for name in names if hasattr(cuda, name)}
    torch.Tensor.is_cuda = property(lambda self: True)
    cuda.get_device_properties = lambda *args, **kwargs: props
    cuda.device = _NoDevice
    cuda.device_of = _NoDevice
    cuda.current_device = lambda: 0
    cuda.set_device = lambda *args, **kwargs: None
    cuda.device_count = lambda: 1
    try:
        yield props
    finally:
        if had_is_cuda:
            torch.Tensor.is_cuda = saved_is_cuda
        else:
            del torch.Tensor.is_cuda
        for name, value in saved.items():
            setattr(cuda, name, value)
