"""Launch sizing and the deterministic second stage of a reduction, shared by the Triton kernels
of the element-wise ops (bias_act, noise_injection).

A reduction splits its summed axis over programs until the grid is one wave of the compiled
kernel (its resident programs per SM times the SMs, ``_triton_launch.programs_per_sm``): every
program then runs at once, and the partial sums stay a small fraction of the bytes moved.

A reduction kernel writes one row of fp32 (fp64 for fp64) partial sums per program along the
summed axis instead of adding into the output with atomics: float atomics would make the
result depend on the order programs finish. :func:`sum_partials` then adds the rows in a fixed
order and rounds once to the output dtype: on a GPU in one launch of a small kernel (torch
would take two for fp16/bf16: the sum, then the cast), on CPU tensors with torch.sum (under
the interpreter a launch costs ~20x more than the sum; the kernel's own tests force it).

Imports triton at module level: only the ops' ``triton.py`` modules import this one.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import triton
import triton.language as tl

from .. import _library
from . import _triton_launch as tl_launch


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """How big a program's tile is and how many SMs a reduction fills.

    tile: elements per tile (a power of two); max_cols: the most columns a tile spans (a
    power of two); sms: the SMs a reduction's grid fills, one wave of resident programs each
    (None: one program along the summed axis); num_warps: warps per program on a GPU;
    sum_kernel: whether :func:`sum_partials` launches its kernel (else torch.sum).
    """

    tile: int
    max_cols: int
    sms: int | None
    num_warps: int
    sum_kernel: bool


# GPU tiles: 4096 elements are 16 KiB of fp32 (8 KiB of fp16) per tensor per program, 16 per
# thread at 8 warps, i.e. four (fp32) or two (fp16/bf16) 16-byte vector accesses in flight per
# thread and tensor; with up to 8 such programs resident per SM that is >= 64 KiB in flight
# per SM, enough to cover DRAM latency at H100 bandwidth (3 TB/s x ~1 us / 132 SMs ~ 23 KiB).
# (ptxas for sm_90, Triton 3.6 and 3.9: bias_act 32-122 registers, noise_injection 31-128, i.e.
# 2-8 such programs resident per SM.) Untuned: no GPU was available when these kernels were
# written.
_GPU = LaunchConfig(tile=4096, max_cols=1024, sms=None, num_warps=8, sum_kernel=True)
# The interpreter pays ~2 ms per program and little per element: one tile covers a whole
# test tensor, and reductions use a single program along the summed axis.
INTERPRETER = LaunchConfig(tile=1 << 14, max_cols=1 << 14, sms=None, num_warps=1, sum_kernel=False)


@functools.cache
def _gpu_config(sms: int) -> LaunchConfig:
    return dataclasses.replace(_GPU, sms=sms)


def launch_config(t: torch.Tensor) -> LaunchConfig:
    """The sizing for kernels on ``t``'s device: GPU-tuned on CUDA, big tiles on CPU tensors
    (the interpreter)."""
    if t.is_cuda:
        return _gpu_config(tl_launch.device_limits(t).sms)
    return INTERPRETER


def reduction_target(config: LaunchConfig, kernel, like: torch.Tensor, *args, **kwargs):
    """The grid a reduction launch of ``kernel`` (specialised as ``args``/``kwargs`` launch
    it) aims for: one wave on ``config.sms`` SMs; None where ``config`` does not split."""
    if config.sms is None:
        return None
    return config.sms * tl_launch.programs_per_sm(kernel, like, *args, **kwargs)


def next_power_of_2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def split_reduction(
    kept_blocks: int, summed_tiles: int, target_programs: int | None
) -> tuple[int, int]:
    """``(tiles_per_program, groups)``: how a reduction over ``summed_tiles`` tiles, repeated
    for ``kept_blocks`` independent blocks, is split so that ``kept_blocks * groups`` programs
    reach ``target_programs`` (None: no split). Each group is a run of consecutive tiles summed
    by one program."""
    if target_programs is None or summed_tiles <= 1:
        return max(summed_tiles, 1), 1
    groups_wanted = triton.cdiv(target_programs, kept_blocks)
    tiles_per_program = max(1, triton.cdiv(summed_tiles, groups_wanted))
    return tiles_per_program, triton.cdiv(summed_tiles, tiles_per_program)


def needs_int64_index(*numels: int) -> bool:
    """Whether an element offset into buffers of these sizes may pass int32: the kernels then
    index in int64. (Lanes past the end are masked: their offsets may wrap, never be used.)"""
    return any(n >= 2**31 for n in numels)


@triton.jit
def _sum_rows_kernel(
    src_ptr,
    dst_ptr,
    terms,
    width,
    COMPUTE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_W: tl.constexpr,
):
    # dst[w] = sum over t of src[t, w], in a fixed order: BLOCK_T running sums per column,
    # then one tree over them. Bytes: the partials once, the output once.
    w = tl.program_id(0) * BLOCK_W + tl.arange(0, BLOCK_W)
    w_mask = w < width
    acc = tl.zeros([BLOCK_T, BLOCK_W], COMPUTE)
    for t0 in range(0, terms, BLOCK_T):
        t = t0 + tl.arange(0, BLOCK_T)
        mask = (t < terms)[:, None] & w_mask[None, :]
        acc += tl.load(src_ptr + t[:, None] * width + w[None, :], mask=mask, other=0.0)
    tl.store(dst_ptr + w, tl.sum(acc, axis=0).to(dst_ptr.dtype.element_ty), mask=w_mask)


def sum_partials(partials: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``partials.sum(0)`` rounded once to ``dtype``, deterministically, in one launch.

    Args:
        partials: ``[T, W]`` contiguous fp32 (fp64) partial sums.
        dtype: the output dtype.

    Returns:
        ``[W]`` in ``dtype``.
    """
    terms, width = partials.shape
    out = _library.new_output([width], partials, dtype=dtype)
    if width == 0:
        return out
    if terms == 0:
        return out.zero_()
    config = launch_config(partials)
    if not config.sum_kernel:
        return out.copy_(partials.sum(0))
    # GPU: 32 columns (a 128-byte row segment of fp32) by 128 terms per step, so a [512, 512]
    # buffer (1 MiB) is 16 programs of 4 dependent steps: latency, not bandwidth, bounds it.
    block_w = min(next_power_of_2(width), 32 if partials.is_cuda else config.max_cols)
    block_t = min(next_power_of_2(terms), max(1, config.tile // block_w))
    grid = (triton.cdiv(width, block_w),)
    tl_launch.launch(
        _sum_rows_kernel, grid, partials, partials, out, terms, width,
        COMPUTE=tl_launch.compute_dtype(partials.dtype),
        BLOCK_T=block_t, BLOCK_W=block_w, num_warps=4,
    )  # fmt: skip
    return out
