"""How the plane-norm kernels walk ``x: [N, C, H, W]``: the plans of the package docstring,
their block sizes (per device kind, from ptxas's register counts) and their grids."""

from __future__ import annotations

import dataclasses

import torch
import triton

from .. import _triton_launch as tl_launch


@dataclasses.dataclass(frozen=True)
class _Budget:
    """Block-size limits for one kind of device, in float32 values (float64 halves them on a
    GPU: a float64 value takes two registers)."""

    tile: int  # values of x in a whole-plane tile (small planes share one up to this)
    whole_plane_max: int  # pixels (padded to a power of two) a whole-plane tile takes
    min_cl_channels: int  # channels_last one-pass tiles: fewest channels (a contiguous run)
    sweep_max_nchw: int  # pixels a sweep plan takes (larger planes split)
    sweep_max_cl: int
    sweep_channels_nchw: int  # planes per program in the NCHW sweep plan
    sweep_tile: int  # values per loop iteration of the sweep kernels (NCHW)
    sweep_tile_cl: int  # (channels_last)
    split_channels_nchw: int  # planes per program in the split plan
    split_channels_cl: int
    sub_tile: int  # values per loop iteration of the split kernels
    max_chunks: int  # chunks per plane in the split plan (the finalize kernel's block)
    noise_tile: int  # values per iteration of the dnoise kernel
    backward_divisor: int  # backward tiles and sub-tiles hold this many times fewer values
    # than the forward's, with the same warps
    scalar_divisor: int  # tiles this many times smaller when accesses cannot be vectorised
    sweep_programs: int | None  # CPU tensors: the sweep plan's grid (None: a program per row
    # block); CUDA grids come from the compiled kernel's occupancy (_one_pass_grid)


# CUDA. Register counts are ptxas's for sm_90 (Triton 3.6 and 3.9 compiling every StyleGAN
# launch for the target without a GPU, .ci/compile_triton.py; no kernel has been timed). At 8
# warps two resident programs per SM need at most 128 registers a thread (65536 / (2 * 256));
# 16-warp programs holding whole 128x128 planes took 128 (one program per SM) and spilled up to
# 592 bytes. Forward programs hold 4096 values (16 a thread: four 16-byte fp32 vectors in
# flight per tensor), backward ones 2048 but for NCHW split sub-tiles (they keep x, dy and
# noise live together; at 4096 they took 120-134 registers, where ptxas spilled to stay at 128):
# - whole-plane tiles (NCHW planes up to 64x64, small planes sharing a tile; channels_last >= 16
#   channels x the plane): forward 32-105 registers, backward 40-112;
# - sweep (NCHW up to 128x128, a plane a program, 4096-value sub-tiles; channels_last up to
#   32x32, 16 channels (64 contiguous bytes of fp32 a pixel) x 128 pixels): forward 32-119,
#   backward 38-125 (channels_last halves the sub-tile: with 8 fp16 channels a thread, every
#   per-channel sum and coefficient is 8 registers, and 16 x 256 took 164-176);
# - split (bigger planes, up to 64 chunks: 32 planes of 1024x1024 are 2048 programs; NCHW a
#   plane a program, 4096-value sub-tiles; channels_last 32 channels (128 contiguous bytes of
#   fp32 a pixel) x 128 pixels, 64 backward): 32-128.
# Sizes whose contiguous run is not a multiple of 16 compile to one 64-bit address a value:
# their tiles hold a quarter (the backward's 16x128 took 142 registers at half).
_CUDA = _Budget(
    tile=4096, whole_plane_max=4096, min_cl_channels=16, sweep_max_nchw=16384, sweep_max_cl=1024,
    sweep_channels_nchw=1, sweep_tile=4096, sweep_tile_cl=2048, split_channels_nchw=1,
    split_channels_cl=32, sub_tile=4096, max_chunks=64, noise_tile=4096, backward_divisor=2,
    scalar_divisor=4, sweep_programs=None,
)  # fmt: skip
# CPU (interpreter): a program costs ~1.5 ms and every call of a @triton.jit helper (tl.sum
# included) inside it several more, so programs take all they can; the limits stay small
# enough that the test shapes reach every plan: planes of up to 32 pixels take whole-plane
# tiles, 60-pixel ones the sweep (two sub-tiles a sweep for NCHW), 4355- and 16384-pixel ones
# the split plan (two chunks; a sub-tile loop at 16384).
_INTERPRETER = _Budget(
    tile=4096, whole_plane_max=32, min_cl_channels=16, sweep_max_nchw=4096, sweep_max_cl=4096,
    sweep_channels_nchw=32, sweep_tile=1024, sweep_tile_cl=1024, split_channels_nchw=4,
    split_channels_cl=4, sub_tile=4096, max_chunks=2, noise_tile=4096, backward_divisor=1,
    scalar_divisor=1, sweep_programs=None,
)  # fmt: skip

# A sweep plan's programs re-read, from L2, the planes they read moments earlier: the programs
# resident at once may together read at most this share of the L2 before their re-reads.
_L2_SHARE = 0.75


@dataclasses.dataclass(frozen=True)
class Plan:
    channels_last: bool
    one_pass: bool  # whole planes per program: one launch forward, one (+ batch sum) backward
    sweep: bool  # one pass: the planes are swept twice in block_hw sub-tiles (else a tile
    # holds them and they are read once)
    block_c: int  # tile rows: planes (NCHW) or channels of one sample (channels_last)
    block_hw: int  # whole-plane tile: the (padded) plane; sweep and split: the sub-tile
    chunk_hw: int  # split: pixels per chunk (a multiple of block_hw); one pass: the plane
    chunks: int  # split: chunks per plane
    row_programs: int  # row blocks: the split plan's grid axis 0, the one-pass plan's work
    num_warps: int


def warps_for(values: int) -> int:
    # At least 8 values a thread (two 16-byte fp32 vectors a tensor), at most 8 warps: a
    # 16-warp program needs <= 64 registers a thread for two to share an SM.
    return max(1, min(8, values // 256))


def plan_for(x: torch.Tensor, channels_last: bool, backward: bool = False) -> Plan:
    """How a kernel walks ``x: [N, C, H, W]`` (non-empty, dense in the given layout)."""
    budget = _CUDA if x.is_cuda else _INTERPRETER
    n, c, h, w = x.shape
    hw = h * w
    hw_block = triton.next_power_of_2(hw)
    rows_cap = triton.next_power_of_2(c if channels_last else n * c)
    min_rows = min(rows_cap, budget.min_cl_channels) if channels_last else 1
    per_value = 2 if x.is_cuda and x.dtype == torch.float64 else 1
    # A contiguous run (pixels NCHW, channels channels_last) of a multiple of 16 values lets
    # Triton vectorise; otherwise every value takes its own 64-bit address.
    scalar = 1 if (c if channels_last else hw) % 16 == 0 else budget.scalar_divisor
    # Backward programs keep x, dy and noise live together: fewer values, as many warps
    # (except NCHW split sub-tiles: at 2048 values ptxas pinned _backward_chunk_sums to 32
    # registers with an 8-byte spill (Triton 3.6); at 4096 it spills nothing).
    fewer = budget.backward_divisor if backward else 1

    def plan(one_pass, sweep, block_c, block_hw, chunk_hw, chunks, divided=fewer):
        row_programs = n * triton.cdiv(c, block_c) if channels_last else triton.cdiv(n * c, block_c)
        warps = warps_for(block_c * block_hw * scalar * divided)
        return Plan(
            channels_last, one_pass, sweep, block_c, block_hw, chunk_hw, chunks, row_programs, warps
        )

    tile = budget.tile // (per_value * scalar * fewer)
    if hw_block <= budget.whole_plane_max // per_value and hw_block * min_rows <= tile:
        block_c = min(rows_cap, max(min_rows, tile // hw_block))
        return plan(True, False, block_c, hw_block, hw, 1)
    sweep_max = budget.sweep_max_cl if channels_last else budget.sweep_max_nchw
    if hw <= sweep_max // per_value:
        sweep_tile = budget.sweep_tile_cl if channels_last else budget.sweep_tile
        block_c = min(
            rows_cap, budget.min_cl_channels if channels_last else budget.sweep_channels_nchw
        )
        sub_hw = min(hw_block, max(1, sweep_tile // (per_value * scalar * fewer) // block_c))
        return plan(True, True, block_c, sub_hw, hw, 1)
    divided = fewer if channels_last else 1
    block_c = min(
        rows_cap, budget.split_channels_cl if channels_last else budget.split_channels_nchw
    )
    sub_hw = min(hw_block, max(1, budget.sub_tile // (per_value * scalar * divided) // block_c))
    subs_per_chunk = triton.cdiv(triton.cdiv(hw, sub_hw), budget.max_chunks)
    chunk_hw = subs_per_chunk * sub_hw
    return plan(False, False, block_c, sub_hw, chunk_hw, triton.cdiv(hw, chunk_hw), divided)


def one_pass_grid(plan: Plan, x: torch.Tensor, kernel, swept_tensors: int, args, kwargs) -> int:
    """The grid of a one-pass launch of ``kernel`` (``args``/``kwargs`` as launched): a program
    per row block, except for sweep plans, whose programs loop over row blocks. On a GPU a
    sweep grid is one wave of the compiled kernel (its resident programs per SM, at most as
    many as let the planes every resident program sweeps, ``swept_tensors`` tensors of them,
    fit ``_L2_SHARE`` of the L2) times the SMs."""
    if not plan.sweep:
        return plan.row_programs
    if not x.is_cuda:
        cap = _INTERPRETER.sweep_programs
        return plan.row_programs if cap is None else min(cap, plan.row_programs)
    limits = tl_launch.device_limits(x)
    resident = tl_launch.programs_per_sm(kernel, x, *args, **kwargs)
    swept = plan.block_c * plan.chunk_hw * x.element_size() * swept_tensors
    by_l2 = max(1, int(limits.l2_bytes * _L2_SHARE) // (limits.sms * swept))
    return min(plan.row_programs, min(resident, by_l2) * limits.sms)


def finalize_planes(x: torch.Tensor, planes: int, chunks: int) -> int:
    """Planes per program of the finalize kernels: 2048 partials a program on the GPU (ptxas:
    a [128, 64] float64 block used 255 registers and spilled)."""
    if not x.is_cuda:
        return triton.next_power_of_2(planes)
    return max(1, 2048 // triton.next_power_of_2(chunks))


def column_sum_blocks(src: torch.Tensor) -> tuple[int, int]:
    """``(block_rows, block_cols)`` of the ordered column sums of ``src: [groups, rows, cols]``."""
    _, rows, cols = src.shape
    block_cols = min(256 if src.is_cuda else 4096, triton.next_power_of_2(cols))
    # GPU: [8, 256] accumulators (a [32, 256] block took 128 registers a thread at 4 warps).
    block_rows = 8 if src.is_cuda else triton.next_power_of_2(rows)
    return min(block_rows, max(1, 4096 // block_cols)), block_cols


def noise_gradient_blocks(plan: Plan, x: torch.Tensor) -> tuple[int, int]:
    """``(block_c, block_hw)`` of the dnoise kernel on ``x``."""
    budget = _CUDA if x.is_cuda else _INTERPRETER
    _, c, h, w = x.shape
    hw = h * w
    c_block = triton.next_power_of_2(c)
    hw_block = triton.next_power_of_2(hw)
    # As in plan_for: float64 values take two registers, unvectorised accesses an address each.
    per_value = 2 if x.is_cuda and x.dtype == torch.float64 else 1
    scalar = 1 if (c if plan.channels_last else hw) % 16 == 0 else budget.scalar_divisor
    tile = budget.noise_tile // per_value // scalar
    if plan.channels_last:
        block_c = min(c_block, 64)
        block_hw = min(hw_block, max(1, tile // block_c))
    else:
        block_hw = min(hw_block, 512 if x.is_cuda else tile)
        block_c = min(c_block, max(1, tile // block_hw))
    return block_c, block_hw
