"""What every Triton launcher of the package shares: the device a launch runs on, how float
scalars travel, and how big a grid one wave of resident programs is.

- :func:`launch` runs ``kernel[grid](...)`` with the input's CUDA device current. Triton
  compiles for, and launches on, the *current* device: without the guard a ``cuda:1`` tensor
  on a thread whose current device is 0 is read by a kernel on device 0.
- :func:`compute_dtype` is the precision kernels compute in (float64 for float64 inputs, else
  float32).
- :func:`float32_split` turns a float scalar into two float32 runtime arguments. A float
  ``tl.constexpr`` would compile a kernel per value (seconds on a GPU, again whenever a
  training loop changes e.g. a scheduled clamp); a plain float argument is passed as float32,
  which would cost float64 inputs their precision. ``hi + lo`` carries the value to ~2^-48;
  kernels rejoin the pair with :func:`join_float32`.
- :func:`programs_per_sm` is how many programs of a compiled specialization one SM holds at
  once (its registers, warps and shared memory against the SM's limits): reductions and
  persistent grids are sized to one wave, ``programs_per_sm * SMs`` programs, all resident
  together, instead of a fixed count per SM. On a GPU the specialization is compiled first
  (``JITFunction.warmup``; Triton 3.6 and 3.9 alike) and the answer cached per
  specialization and device. Under ``TRITON_INTERPRET=1``, and for CPU tensors that merely
  pose as CUDA (tools that run the GPU plans on the interpreter), nothing is compiled:
  :data:`DEFAULT_PROGRAMS_PER_SM` stands in.

Imports triton at module level: only modules that launch Triton kernels import this one.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools

import torch
import triton
import triton.language as tl

from ._common import triton_interpreting

# Read when this module is first imported, which is after triton's own (same value).
INTERPRETING = triton_interpreting()

# Grids sized without a compiled kernel (interpreter, tensors posing as CUDA) assume 4
# programs per SM: what an 8-warp program of up to 64 registers, or a 4-warp one of up to
# 128, gets on sm_90 (65536 / (64 * 256)), the middle of what the compiled kernels of this
# package get (2 to 16; .ci/compile_triton.py prints each).
DEFAULT_PROGRAMS_PER_SM = 4


# ---------------------------------------------------------------------------------------------
# The device of a launch


def cuda_index(t: torch.Tensor) -> int | None:
    """The CUDA device index of ``t``, or None for a tensor not on a CUDA device (CPU tensors
    under the interpreter, including those whose ``is_cuda`` is patched to pose as CUDA)."""
    device = t.device
    return device.index if device.type == "cuda" else None


def on_device(t: torch.Tensor):
    """A context in which ``t``'s CUDA device is the current one (nothing for other tensors)."""
    index = cuda_index(t)
    return contextlib.nullcontext() if index is None else torch.cuda.device(index)


def launch(kernel, grid, like: torch.Tensor, *args, **kwargs):
    """``kernel[grid](*args, **kwargs)`` on ``like``'s device."""
    with on_device(like):
        return kernel[grid](*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Float scalars


def float32_split(value: float) -> tuple[float, float]:
    """``(hi, lo)``, both float32 numbers, with ``hi + lo`` equal to ``value`` to ~2^-48
    relative; a kernel adds them in its compute dtype (in float32 the sum is ``hi``, the
    float32 rounding of ``value``). Inf gives ``(inf, 0)``, NaN ``(nan, nan)``: the sum keeps
    them. A finite value beyond float32's range (|value| > 3.4e38) becomes +-Inf."""
    value = float(value)
    hi = ctypes.c_float(value).value
    lo = ctypes.c_float(value - hi).value if abs(hi) != float("inf") else 0.0
    return hi, lo


def compute_dtype(dtype: torch.dtype):
    """The ``tl`` dtype kernels compute in for inputs of ``dtype``: float64 for float64, else
    float32 (``_common.statistics_dtype``'s, as a constexpr)."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def join_float32(hi, lo, ACC: tl.constexpr):
    """In a kernel: the ``ACC`` value of a :func:`float32_split` pair. float64: ``hi + lo``;
    float32: ``hi`` alone, exactly what the sum rounds to, and left a uniform kernel parameter
    (forming the sum made ptxas keep it in a register, which it once spilled)."""
    if ACC == tl.float64:
        value = tl.cast(hi, tl.float64) + tl.cast(lo, tl.float64)
    else:
        value = tl.cast(hi, ACC)
    return value


# ---------------------------------------------------------------------------------------------
# Occupancy


@dataclasses.dataclass(frozen=True)
class SMLimits:
    """What one SM of a device offers resident programs, and how many SMs it has."""

    sms: int
    regs: int = 65536  # 32-bit registers per SM
    threads: int = 2048
    shared: int = 233472  # bytes of shared memory per SM (228 KiB on sm_90)
    programs: int = 32  # resident thread blocks per SM
    reserved_shared: int = 1024  # bytes the driver keeps per block (sm_80 and later)
    l2_bytes: int = 50 * 2**20


# H100 SXM (sm_90): the limits when the device does not report its own.
SM90 = SMLimits(sms=132)

# Resident thread blocks per SM where it is not 32 (CUDA's occupancy tables); torch does not
# report it.
_BLOCKS_PER_SM = {(7, 5): 16, (8, 6): 16, (8, 7): 16, (8, 9): 24}


def resident_programs(n_regs: int, num_warps: int, shared: int, limits: SMLimits = SM90) -> int:
    """Programs of ``num_warps`` warps using ``n_regs`` registers a thread and ``shared``
    bytes of shared memory that one SM holds at once: the least of what its registers
    (allocated per warp in 256-register units, i.e. 8 a thread), threads, shared memory and
    block slots allow."""
    threads = 32 * num_warps
    regs = -(-max(int(n_regs), 1) // 8) * 8
    by_regs = limits.regs // (regs * threads)
    by_threads = limits.threads // threads
    by_shared = limits.shared // (int(shared) + limits.reserved_shared)
    return min(by_regs, by_threads, by_shared, limits.programs)


@functools.cache
def _device_limits(index: int) -> SMLimits:
    props = torch.cuda.get_device_properties(index)

    def get(name, default):
        value = getattr(props, name, None)
        return int(value) if value else default

    blocks = _BLOCKS_PER_SM.get((getattr(props, "major", 9), getattr(props, "minor", 0)), 32)
    return SMLimits(
        sms=get("multi_processor_count", SM90.sms),
        regs=get("regs_per_multiprocessor", SM90.regs),
        threads=get("max_threads_per_multi_processor", SM90.threads),
        shared=get("shared_memory_per_multiprocessor", SM90.shared),
        programs=blocks,
        l2_bytes=get("L2_cache_size", SM90.l2_bytes),
    )


def device_limits(t: torch.Tensor) -> SMLimits:
    """The SM limits of ``t``'s GPU from ``torch.cuda.get_device_properties`` (sm_90's where a
    property is not reported); a tensor posing as CUDA gets device 0's properties (which such
    tools patch)."""
    index = cuda_index(t)
    if index is None:
        # Posing: not cached, so a tool may patch the properties at any time.
        return _device_limits.__wrapped__(0)
    return _device_limits(index)


def _spec(value):
    """What of a positional (runtime) argument Triton specialises on: the dtype and 16-byte
    alignment of a tensor, whether an int is 1 or a multiple of 16 and fits int32."""
    if isinstance(value, torch.Tensor):
        return (value.dtype, value.data_ptr() % 16 == 0)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return ("int", value == 1, value % 16 == 0, -(2**31) <= value < 2**31)
    if isinstance(value, float):
        return "fp32"
    return repr(value)


def _constexpr_spec(value):
    """A keyword argument (a constexpr or a launch option) is compiled in whole."""
    return _spec(value) if isinstance(value, torch.Tensor) else repr(value)


_OCCUPANCY: dict[tuple, int] = {}


def programs_per_sm(kernel, like: torch.Tensor, *args, **kwargs) -> int:
    """Resident programs per SM of ``kernel`` specialised for ``args``/``kwargs`` (exactly as
    it will be launched, constexprs as keywords; grid-dependent integers should be
    ``do_not_specialize``) on
    ``like``'s GPU. Compiles the specialization if Triton has not yet (the launch that follows
    reuses it); :data:`DEFAULT_PROGRAMS_PER_SM` under the interpreter and for tensors posing
    as CUDA. At least 1."""
    index = cuda_index(like)
    if index is None or INTERPRETING or not isinstance(kernel, triton.runtime.jit.JITFunction):
        return DEFAULT_PROGRAMS_PER_SM
    key = (
        kernel,
        index,
        tuple(_spec(a) for a in args),
        tuple(sorted((k, _constexpr_spec(v)) for k, v in kwargs.items())),
    )
    found = _OCCUPANCY.get(key)
    if found is None:
        # Inside the guard: Triton compiles for, and occupancy_of loads the binary into, the
        # current device (a module loaded on another device's context would break the launch).
        with torch.cuda.device(index):
            compiled = kernel.warmup(*args, grid=(1,), **kwargs)
            found = occupancy_of(compiled, _device_limits(index))
        _OCCUPANCY[key] = found
    return found


def occupancy_of(compiled, limits: SMLimits) -> int:
    """:func:`resident_programs` of a compiled kernel (``triton.compiler.CompiledKernel``:
    registers from loading its binary, warps and shared memory from its metadata); the
    default if it reports none (a compile hook took over)."""
    if compiled is None:
        return DEFAULT_PROGRAMS_PER_SM
    if getattr(compiled, "n_regs", None) is None:
        compiled._init_handles()  # loads the binary: the only place Triton reports registers
    metadata = compiled.metadata
    programs = resident_programs(compiled.n_regs, metadata.num_warps, metadata.shared, limits)
    return max(1, programs)


def wave(kernel, like: torch.Tensor, *args, **kwargs) -> int:
    """Programs of ``kernel`` (specialised as :func:`programs_per_sm` takes it) that run at
    once on ``like``'s GPU: a grid of this many is one full wave."""
    return programs_per_sm(kernel, like, *args, **kwargs) * device_limits(like).sms
