"""Triton kernel of upfirdn2d (``impl='triton'``), polyphase, one pass over the data.

One kernel serves every call ``geometry.triton_reason`` accepts: the forward and, since the
adjoint of upfirdn2d is upfirdn2d again (geometry.adjoint_params), every order of derivative
with respect to ``x``. For StyleGAN's resampling with the 4x4 filter the forward and backward
parameters are (up, down, padding per axis): upsample2d (2, 1, 2/1) whose backward is
(1, 2, 1/1), i.e. downsample2d, whose backward is upsample2d's; filter2d (1, 1, 2/1) with
backward (1, 1, 1/2); all of them run the same code with different constexpr phase tables.

Polyphase, along one axis (``Plan``): output ``m = mb * up + r`` (base position ``mb``, phase
``r``) sees input ``k = mb * down + offset + slot`` through the cross-correlation tap
``a = a0_r + j * up`` for ``slot = slot0_r + j``, ``j < count_r``. The inserted zeros and the
padding are never multiplied; every tap that meets a real sample is (zero taps too, so NaN and
Inf propagate as in the reference's convolution). Out-of-range inputs are masked loads of 0.

Memory traffic (the reason for the shape of the kernel; E = input elements):
- Minimum bytes: read x once, write y once: upsample2d x2 moves E + 4E elements, downsample2d
  x2 4E + E, filter2d E + E. Nothing is staged in global memory (no zero-inserted or padded
  copy, no second pass), one launch per call.
- A program owns a strip of base columns x a block of lanes (NCHW: planes n*C+c; NHWC:
  channels of one image) and walks down a band of >= 16 base rows. The ``win_y`` input rows a
  base row reads stay in registers as a rolling window: each base row loads only ``down_y``
  new rows (``win_y`` at a band's start), each once per column shift (``win_x`` loads, the
  repeats served by L1). DRAM reads each input element once plus a band's halo rows
  (``win_y - down_y`` per band: <= 3/16 of the input, L2 hits when the neighbouring band runs
  alongside). The next base row's input is requested before this row's arithmetic (a
  one-row prefetch), so load latency overlaps compute.
- Loads per output element (4x4 filter): upsample x2 0.75 (3 shifts per 4 outputs),
  downsample x2 8, filter2d 4; FMAs: 4, 16, 16. Accumulation in float32 (float64 for
  float64) with the taps x gain in registers, one rounding per output.
- NCHW: the column shifts make most loads unaligned, so the kernel hides the unit column
  stride from the compiler (see ``unit_stride``): one element per thread per access, each
  warp load or store a contiguous 128-byte line. up=2 rows are the exception: the two output
  phases are interleaved in registers (``tl.join`` + reshape) and stored as 128-bit vectors.
  NHWC: C is innermost, so every load and store is a 64/128-bit vector whatever the shift.
- Rows outside the image are a per-program branch, not a mask per element.

Launch: grid = groups x lane blocks x row bands x column blocks (flattened on axis 0, column
blocks fastest so neighbouring programs share halo rows in L2). On CUDA a tile holds 16 bytes
per thread per load unless the window is large, 4 warps; lanes shrink and row bands split only
while the grid is short of one wave of the compiled kernel (its resident programs per SM times
the SMs, ``launch_config``). Compiled ahead of time for sm_90 (Triton 3.9 and 3.6,
``.ci/compile_triton.py``) every case uses 40-128 registers (4-12 programs per SM) with no
spills. The gain is a runtime float32 hi/lo pair: a new gain compiles nothing. Under
``TRITON_INTERPRET=1`` (CPU tensors) every interpreted operation costs ~0.2 ms, so one
program covers a whole test tensor.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import torch
import triton
import triton.language as tl

from ... import _library
from .. import _triton_launch as tl_launch
from . import geometry

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The polyphase structure of one axis.

    ``phases[r] = (a0, slot0, count)``: output phase ``r`` uses cross-correlation taps
    ``a0 + j * up`` on window slots ``slot0 + j``, ``j < count``. ``window``: input samples a
    base position reads (0: every output is 0). ``offset``: input index of slot 0 at base
    position 0 (base position ``mb`` reads ``mb * down + offset + slot``).
    """

    phases: tuple[tuple[int, int, int], ...]
    window: int
    offset: int


@functools.lru_cache(maxsize=256)
def axis_plan(up: int, down: int, taps: int, pad0: int) -> Plan:
    """Along one axis ``y[m] = sum_k x[k] * g[k * up + pad0 - m * down]``; with
    ``pad0 = q * up + p`` (``0 <= p < up``) the output ``m = mb * up + r`` meets input
    ``k = mb * down + c_r + j - q`` at tap ``a0_r + j * up``, where ``a0_r = (p - r * down) mod
    up`` and ``c_r = (r * down - p + a0_r) / up``."""
    p = pad0 % up
    q = (pad0 - p) // up
    phases = []
    for r in range(up):
        t = r * down - p
        a0 = (-t) % up
        count = max(0, -(-(taps - a0) // up))
        phases.append((a0, (t + a0) // up, count))
    live = [(c, n) for _, c, n in phases if n > 0]
    first = min((c for c, _ in live), default=0)
    window = max((c + n for c, n in live), default=first) - first
    return Plan(tuple((a0, c - first, n) for a0, c, n in phases), window, first - q)


@triton.jit
def _load_row(x_base, k, in_h, x_row, col_offsets, col_masks, zero, WIN_X: tl.constexpr):
    """Input row ``k`` (int64) at each of the ``WIN_X`` column shifts, in ``zero``'s dtype
    (zeros where the row or a column lies outside the image)."""
    if (k >= 0) & (k < in_h):  # uniform per program: a branch, not a mask per element
        row_ptr = x_base + k * x_row
        values = ()
        for s in tl.static_range(WIN_X):
            v = tl.load(row_ptr + col_offsets[s], mask=col_masks[s], other=0.0)
            values = values + (v.to(zero.dtype),)
    else:
        values = ()
        for _ in tl.static_range(WIN_X):
            values = values + (zero,)
    return values


@triton.jit
def _phase_sum(
    window,
    taps,
    zero,
    A0Y: tl.constexpr,
    SLOT_Y: tl.constexpr,
    COUNT_Y: tl.constexpr,
    A0X: tl.constexpr,
    SLOT_X: tl.constexpr,
    COUNT_X: tl.constexpr,
    UPY: tl.constexpr,
    UPX: tl.constexpr,
    FW: tl.constexpr,
):
    """One output phase of one base row: the sum over its taps of tap x input, where
    ``window[slot_y][slot_x]`` holds the input a base position reads at that slot.
    (Separate so that the phase table's entries arrive as constexprs: assigned to a local in
    the row loop they would become tensors.)"""
    acc = zero
    for jy in tl.static_range(COUNT_Y):
        shifts = window[SLOT_Y + jy]
        for jx in tl.static_range(COUNT_X):
            tap = taps[(A0Y + jy * UPY) * FW + A0X + jx * UPX]
            acc = tl.fma(shifts[SLOT_X + jx], tap, acc)
    return acc


# unit_stride (always 1) is never specialised on its value: NCHW columns are indexed through
# it so that the compiler cannot see the shifted loads as contiguous runs. Seeing them so (or a
# vectorisable store), it gives each thread 2-4 adjacent elements and every (unaligned, hence
# scalar) load instruction of a warp touches 2-4 lines for a fraction of each; with unknown
# contiguity a warp's scalar load or store covers one contiguous 128-byte line. Exceptions: the
# interleaved up=2 rows keep the known unit stride and store 128-bit vectors (after one
# register shuffle through shared memory); NHWC keeps 128-bit vectors throughout (contiguous
# channels).
# (The row bands, rows_per_band and row_bands, follow the compiled kernel's occupancy; they are
# not specialised on either, so the kernel compiled to measure it is the one launched.)
@triton.jit(do_not_specialize=["unit_stride", "rows_per_band", "row_bands"])
def _upfirdn2d_kernel(
    x_ptr,
    f_ptr,
    y_ptr,
    lanes,
    in_h,
    in_w,
    out_h,
    out_w,
    x_group,
    x_lane,
    x_row,
    x_col,
    y_group,
    y_lane,
    y_row,
    y_col,
    base_rows,
    rows_per_band,
    lane_blocks,
    row_bands,
    col_blocks,
    offset_y,
    offset_x,
    gain_hi,
    gain_lo,
    unit_stride,
    PHASES_Y: tl.constexpr,
    PHASES_X: tl.constexpr,
    WIN_Y: tl.constexpr,
    WIN_X: tl.constexpr,
    KEEP_Y: tl.constexpr,
    UPY: tl.constexpr,
    UPX: tl.constexpr,
    DOWNY: tl.constexpr,
    DOWNX: tl.constexpr,
    FH: tl.constexpr,
    FW: tl.constexpr,
    SEPARABLE: tl.constexpr,
    FLIP: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    INTERLEAVE_X: tl.constexpr,
    FLOAT64: tl.constexpr,
    BLOCK_LANES: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Grid: (groups * lane_blocks * row_bands * col_blocks,). A program computes base rows
    ``[band * rows_per_band, ...)`` x base columns ``[col_block * BLOCK_COLS, ...)`` x lanes
    ``[lane_block * BLOCK_LANES, ...)`` of group ``group`` (NCHW: one group, lanes = N * C
    planes; NHWC: groups = N images, lanes = C channels)."""
    ACC = tl.float64 if FLOAT64 else tl.float32
    pid = tl.program_id(0)
    col_block = pid % col_blocks
    rest = pid // col_blocks
    band = rest % row_bands
    rest = rest // row_bands
    lane_block = rest % lane_blocks
    group = rest // lane_blocks

    # Index arithmetic of the prologue in int64 (no overflow; the interpreter checks every
    # int32 add and multiply for overflow at ~10 extra operations each); the per-element
    # offsets the row loop adds are int32 (a tile spans < 2^31 elements, see launch_config).
    lane0 = lane_block.to(tl.int64) * BLOCK_LANES
    x_base = x_ptr + group.to(tl.int64) * x_group + lane0 * x_lane
    y_base = y_ptr + group.to(tl.int64) * y_group + lane0 * y_lane
    cols = col_block.to(tl.int64) * BLOCK_COLS + tl.arange(0, BLOCK_COLS).to(tl.int64)
    lanes_here = tl.arange(0, BLOCK_LANES).to(tl.int64)
    if CHANNELS_LAST:  # [columns, channels]: channels innermost, contiguous
        col = cols[:, None]
        lane = lanes_here[None, :]
    else:  # [planes, columns]: columns innermost, contiguous
        lane = lanes_here[:, None]
        col = cols[None, :]
    lane_ok = lane0 + lane < lanes

    # Loop invariants: per column shift, the offsets and masks of the input columns.
    col_offsets = ()
    col_masks = ()
    first_col = tl.cast(offset_x, tl.int64)
    for s in tl.static_range(WIN_X):
        k = col * DOWNX + (first_col + s)
        if CHANNELS_LAST:
            offsets = lane * x_lane + k * x_col
        else:
            offsets = lane * x_lane + k * unit_stride
        col_offsets = col_offsets + (offsets.to(tl.int32),)
        col_masks = col_masks + (lane_ok & (k >= 0) & (k < in_w),)

    # Cross-correlation taps times gain, g[ay, ax] at ay * FW + ax. gain = gain_hi + gain_lo
    # carries a float64 gain to ~2^-48 through two float32 arguments.
    gain = tl_launch.join_float32(gain_hi, gain_lo, ACC)
    taps = ()
    if SEPARABLE:  # f: [FH] (FH == FW), applied along both axes: g[ay, ax] = g1[ay] * g1[ax]
        taps_1d = ()
        for a in tl.static_range(FH):
            if FLIP:
                taps_1d = taps_1d + (tl.load(f_ptr + a).to(ACC),)
            else:
                taps_1d = taps_1d + (tl.load(f_ptr + (FH - 1 - a)).to(ACC),)
        for ay in tl.static_range(FH):
            for ax in tl.static_range(FW):
                taps = taps + (taps_1d[ay] * taps_1d[ax] * gain,)
    else:
        for ay in tl.static_range(FH):
            for ax in tl.static_range(FW):
                if FLIP:
                    tap = tl.load(f_ptr + (ay * FW + ax))
                else:
                    tap = tl.load(f_ptr + ((FH - 1 - ay) * FW + (FW - 1 - ax)))
                taps = taps + (tap.to(ACC) * gain,)

    if CHANNELS_LAST:
        zero = tl.zeros([BLOCK_COLS, BLOCK_LANES], ACC)
    else:
        zero = tl.zeros([BLOCK_LANES, BLOCK_COLS], ACC)

    # Loop invariants: offsets and masks of the output columns (of each phase, or of the
    # interleaved pair) within an output row.
    out_offsets = ()
    out_masks = ()
    if INTERLEAVE_X:
        out_col = col_block.to(tl.int64) * (2 * BLOCK_COLS)
        out_col = out_col + tl.arange(0, 2 * BLOCK_COLS).to(tl.int64)[None, :]
        out_offsets = ((lane * y_lane + out_col * y_col).to(tl.int32),)
        out_masks = (lane_ok & (out_col < out_w),)
    else:
        for rx in tl.static_range(UPX):
            out_col = col * UPX + rx
            if CHANNELS_LAST:
                offsets = lane * y_lane + out_col * y_col
            else:  # hidden unit stride: one-element-per-thread layout, as for the loads
                offsets = lane * y_lane + out_col * unit_stride
            out_offsets = out_offsets + (offsets.to(tl.int32),)
            out_masks = out_masks + (lane_ok & (out_col < out_w),)

    mb_begin = band * rows_per_band
    mb_end = tl.minimum(mb_begin + rows_per_band, base_rows)
    row_offset = tl.cast(offset_y, tl.int64)
    # The rolling window of input rows: the KEEP_Y rows a base row shares with the next one
    # stay in registers; each base row loads only the rest.
    kept = ()
    for i in tl.static_range(KEEP_Y):
        k = tl.cast(mb_begin, tl.int64) * DOWNY + row_offset + i
        kept = kept + (_load_row(x_base, k, in_h, x_row, col_offsets, col_masks, zero, WIN_X),)
    fresh = ()
    for i in tl.static_range(KEEP_Y, WIN_Y):
        k = tl.cast(mb_begin, tl.int64) * DOWNY + row_offset + i
        fresh = fresh + (_load_row(x_base, k, in_h, x_row, col_offsets, col_masks, zero, WIN_X),)
    for mb in range(mb_begin, mb_end):
        mb64 = tl.cast(mb, tl.int64)
        # Prefetch: the next base row's fresh input rows are requested before this row's
        # arithmetic, so their latency overlaps it (one band-end row is read in vain).
        upcoming = ()
        for i in tl.static_range(KEEP_Y, WIN_Y):
            k = (mb64 + 1) * DOWNY + row_offset + i
            upcoming = upcoming + (
                _load_row(x_base, k, in_h, x_row, col_offsets, col_masks, zero, WIN_X),
            )
        window = kept + fresh
        for ry in tl.static_range(UPY):
            out_row = mb64 * UPY + ry
            row_ptr = y_base + out_row * y_row
            phase_sums = ()
            for rx in tl.static_range(UPX):
                acc = _phase_sum(
                    window, taps, zero,
                    PHASES_Y[ry][0], PHASES_Y[ry][1], PHASES_Y[ry][2],
                    PHASES_X[rx][0], PHASES_X[rx][1], PHASES_X[rx][2],
                    UPY, UPX, FW,
                )  # fmt: skip
                phase_sums = phase_sums + (acc.to(y_ptr.dtype.element_ty),)
            if out_row < out_h:
                if INTERLEAVE_X:
                    # Output columns 2c and 2c + 1 side by side: one contiguous row segment.
                    out = tl.join(phase_sums[0], phase_sums[1])
                    out = tl.reshape(out, [BLOCK_LANES, 2 * BLOCK_COLS])
                    tl.store(row_ptr + out_offsets[0], out, mask=out_masks[0])
                else:
                    for rx in tl.static_range(UPX):
                        tl.store(row_ptr + out_offsets[rx], phase_sums[rx], mask=out_masks[rx])
        kept = ()
        for i in tl.static_range(KEEP_Y):
            kept = kept + (window[WIN_Y - KEEP_Y + i],)
        fresh = upcoming


@dataclasses.dataclass(frozen=True)
class Launch:
    """A launch's tile (``block_lanes`` x ``block_cols`` base positions per row step), the base
    rows one program walks, and its warps."""

    block_lanes: int
    block_cols: int
    rows_per_band: int
    num_warps: int


def launch_config(
    on_cuda: bool,
    sms: int,
    programs_per_sm: Callable[[Launch], int],
    element_size: int,
    channels_last: bool,
    lanes: int,
    lane_stride: int,
    groups: int,
    base_rows: int,
    base_cols: int,
    window_values: int,
) -> Launch:
    """Tile sizes and row bands (see the module docstring). ``sms``: the GPU's SMs;
    ``programs_per_sm(launch)``: resident programs per SM of the kernel compiled with that
    launch's tile (asked for the first tile and, if the lanes shrink, the last);
    ``lane_stride``: the larger of the input's and output's element distance between lanes;
    ``window_values``: tensors a thread keeps per base position (window plus prefetched
    rows)."""
    next_pow2 = triton.next_power_of_2
    if on_cuda:
        num_warps = 4
        # 16 bytes per thread per load (one 128-bit access), halved while the window and the
        # prefetched rows would exceed 48 values per thread (the 4x4 cases then compile to
        # 71-164 registers without spills: sm_90, Triton 3.9, compiled ahead of time).
        per_thread = 16 // element_size
        while per_thread > 1 and per_thread * window_values > 48:
            per_thread //= 2
        tile = per_thread * 32 * num_warps
    else:
        # Interpreter: one program per test tensor where possible (each costs ~1.5 ms).
        num_warps = 1
        tile = 1 << 14
    if channels_last:
        block_lanes = min(next_pow2(lanes), tile)
        block_cols = min(next_pow2(base_cols), max(1, tile // block_lanes))
    else:
        block_cols = min(next_pow2(base_cols), tile)
        block_lanes = min(next_pow2(lanes), max(1, tile // block_cols))
    # Offsets inside a tile are int32: keep a tile's lanes within 2^31 elements.
    while block_lanes > 1 and block_lanes * lane_stride >= 2**31:
        block_lanes //= 2
    if not on_cuda:
        return Launch(block_lanes, block_cols, base_rows, num_warps)

    def programs():
        return groups * triton.cdiv(lanes, block_lanes) * triton.cdiv(base_cols, block_cols)

    # One wave: as many programs as the SMs hold at once (the compiled kernel's registers,
    # warps and shared memory decide; ptxas gives these kernels 4-12 programs per SM), all
    # resident together. Small images (8-32 px, C = 512): fewer lanes per tile, down to one
    # element per thread, until the grid reaches a wave (a 128-program grid leaves SMs idle and
    # every program pays the full row latency). Shrinking only lightens the kernel, so the
    # first tile's wave is the least the last one's can be.
    one_per_thread = 32 * num_warps
    wave = sms * programs_per_sm(Launch(block_lanes, block_cols, base_rows, num_warps))
    shrunk = False
    while programs() < wave and block_lanes > 1 and block_lanes * block_cols > one_per_thread:
        block_lanes //= 2
        shrunk = True
    if shrunk:
        wave = sms * programs_per_sm(Launch(block_lanes, block_cols, base_rows, num_warps))
    # Bands of at least 16 base rows (a band re-reads its halo rows once), split further only
    # while the grid is short of a wave of the kernel launched.
    bands = max(1, min(triton.cdiv(wave, programs()), triton.cdiv(base_rows, 16)))
    return Launch(block_lanes, block_cols, triton.cdiv(base_rows, bands), num_warps)


def forward(
    x: torch.Tensor,
    f: torch.Tensor,
    upx: int,
    upy: int,
    downx: int,
    downy: int,
    padx0: int,
    padx1: int,
    pady0: int,
    pady1: int,
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """The ``upfirdn2d_fwd_triton`` kernel: ``x: [N, C, H, W]`` (any layout; channels_last
    stays channels_last), ``f: [fh, fw]`` or ``[ft]`` float32 -> ``y: [N, C, OH, OW]``."""
    op = "upfirdn2d (triton)"
    if x.dim() != 4:
        raise RuntimeError(f"{op}: x must have shape [N, C, H, W], got {list(x.shape)}")
    if f.dim() not in (1, 2) or f.numel() == 0:
        raise RuntimeError(f"{op}: f must have shape [ft] (separable) or [fh, fw] with taps")
    if f.dtype != torch.float32:
        raise RuntimeError(f"{op}: f must be float32, got {f.dtype}")
    if x.dtype not in FLOAT_DTYPES:
        raise RuntimeError(f"{op}: x must be float16, bfloat16, float32 or float64")
    if min(upx, upy, downx, downy) < 1:
        raise RuntimeError(f"{op}: up and down must be >= 1")
    if f.device != x.device:
        raise RuntimeError(f"{op}: f is on {f.device} but x is on {x.device}")
    if x.device.type == "cpu" and not tl_launch.INTERPRETING:
        raise RuntimeError(f"{op}: CPU tensors need TRITON_INTERPRET=1 set before importing triton")
    fh, fw = f.shape[0], f.shape[-1]
    reason = geometry.triton_reason(fh, fw, (upx, upy), (downx, downy))
    if reason is not None:
        raise RuntimeError(f"{op}: {reason}")
    N, C, H, W = x.shape
    out_h = geometry.output_size(H, upy, downy, pady0, pady1, fh)
    out_w = geometry.output_size(W, upx, downx, padx0, padx1, fw)
    if out_h < 1 or out_w < 1:
        raise RuntimeError(
            f"{op}: the output would be {out_h}x{out_w} (H x W); it needs at least one sample "
            "along each axis"
        )
    fmt = _library.kernel_memory_format(x)
    channels_last = fmt == torch.channels_last
    xc = x.contiguous(memory_format=fmt)
    y = _library.new_output([N, C, out_h, out_w], x, fmt)
    if y.numel() == 0:
        return y
    plan_y = axis_plan(upy, downy, fh, pady0)
    plan_x = axis_plan(upx, downx, fw, padx0)
    if channels_last:
        groups, lanes = N, C
        x_strides = (H * W * C, 1, W * C, C)
        y_strides = (out_h * out_w * C, 1, out_w * C, C)
    else:
        groups, lanes = 1, N * C
        x_strides = (0, H * W, W, 1)
        y_strides = (0, out_h * out_w, out_w, 1)
    base_rows = triton.cdiv(out_h, upy)
    base_cols = triton.cdiv(out_w, upx)
    keep_y = max(plan_y.window - downy, 0)
    gain_hi, gain_lo = tl_launch.float32_split(gain)
    fc = f.contiguous()

    def arguments(launch: Launch, lane_blocks: int, row_bands: int, col_blocks: int):
        args = (
            xc, fc, y, lanes, H, W, out_h, out_w, *x_strides, *y_strides,
            base_rows, launch.rows_per_band, lane_blocks, row_bands, col_blocks,
            plan_y.offset, plan_x.offset, gain_hi, gain_lo, 1,
        )  # fmt: skip
        kwargs = dict(
            PHASES_Y=plan_y.phases, PHASES_X=plan_x.phases,
            WIN_Y=plan_y.window, WIN_X=plan_x.window, KEEP_Y=keep_y,
            UPY=upy, UPX=upx, DOWNY=downy, DOWNX=downx, FH=fh, FW=fw,
            SEPARABLE=f.dim() == 1, FLIP=bool(flip_filter), CHANNELS_LAST=channels_last,
            INTERLEAVE_X=not channels_last and upx == 2, FLOAT64=x.dtype == torch.float64,
            BLOCK_LANES=launch.block_lanes, BLOCK_COLS=launch.block_cols,
            num_warps=launch.num_warps,
        )  # fmt: skip
        return args, kwargs

    def programs_per_sm(launch: Launch) -> int:
        # The band counts are not specialised on: any value compiles the same kernel.
        lane_blocks = triton.cdiv(lanes, launch.block_lanes)
        col_blocks = triton.cdiv(base_cols, launch.block_cols)
        args, kwargs = arguments(launch, lane_blocks, 1, col_blocks)
        return tl_launch.programs_per_sm(_upfirdn2d_kernel, x, *args, **kwargs)

    launch = launch_config(
        on_cuda=x.is_cuda,
        sms=tl_launch.device_limits(x).sms if x.is_cuda else 0,
        programs_per_sm=programs_per_sm,
        element_size=x.element_size(),
        channels_last=channels_last,
        lanes=lanes,
        lane_stride=max(x_strides[1], y_strides[1]),
        groups=groups,
        base_rows=base_rows,
        base_cols=base_cols,
        window_values=(2 * plan_y.window - keep_y) * plan_x.window,
    )
    lane_blocks = triton.cdiv(lanes, launch.block_lanes)
    col_blocks = triton.cdiv(base_cols, launch.block_cols)
    row_bands = triton.cdiv(base_rows, launch.rows_per_band)
    args, kwargs = arguments(launch, lane_blocks, row_bands, col_blocks)
    grid = (groups * lane_blocks * row_bands * col_blocks,)
    tl_launch.launch(_upfirdn2d_kernel, grid, x, *args, **kwargs)
    return y
