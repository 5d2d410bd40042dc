"""Triton kernels for per-plane instance normalisation with a fused prologue and style affine:
the engine behind ``adain`` (identity prologue) and ``layer_epilogue`` (noise, bias, leaky ReLU).
Imported only by ``ops/adain/triton.py`` and ``ops/layer_epilogue/triton.py``, on their first
call (it imports triton).

For ``x: [N, C, H, W]`` and each plane ``(n, c)`` of ``HW = H * W`` pixels:

    v = x + noise_strength[c] * noise[n, hw] + bias[c]      (terms present or not)
    u = v * slope(v),  slope(v) = slope_pos if v > 0 else slope_neg      (identity for adain)
    mean = mean_hw(u),  rstd = 1 / sqrt(mean_hw((u - mean)^2) + eps)
    y = (u - mean) * (rstd * scale[n, c]) + style_bias[n, c]

and the backward, with ``u_hat = (u - mean) * rstd`` and ``g = dy * scale`` element by element
(as autograd of the reference forms it, so an infinite scale gives the reference's NaNs):

    dscale = sum_hw dy * u_hat,  dstyle_bias = sum_hw dy
    dt = slope(v) * rstd * (g - mean_hw(g) - u_hat * mean_hw(g * u_hat))
    dx = dt,  dbias = sum_{n,hw} dt,  dnoise_strength = sum_{n,hw} dt * noise,
    dnoise[n, hw] = sum_c dt * noise_strength[c]  (also summed over n for a shared noise plane)

Plans and their memory traffic. ``X`` = the bytes of x; "loads" counts every byte a kernel
loads or stores (what the interpreter sees), "DRAM" what reaches DRAM; noise and the [N, C] /
[C] tensors are 1/C of X or less per read and left out. The minimum is one read of each input
and one write of each output: ``2X`` forward, ``3X`` backward. The limits below are the GPU's
(``_CUDA``, ``plan_for``); float64 halves the tiles and plane limits, and a contiguous run
(pixels NCHW, channels channels_last) that is not a multiple of 16 values quarters the tiles.

- **one pass, whole planes** (a tile holds the planes: NCHW planes of up to 4096 pixels
  (64x64) forward and 2048 backward, small planes sharing a tile of that many values;
  channels_last, a tile of >= 16 channels x the plane, up to 256 pixels forward and 128
  backward): one program loads the tile, reduces the statistics on chip (an exact two-pass
  variance over values already loaded) and writes the output. Loads = DRAM = ``2X`` forward,
  ``3X`` backward: the minimum.
- **one pass, sweep** (NCHW planes up to 128x128, one a program; channels_last up to 32x32,
  16 channels a program): the program sweeps its planes in sub-tiles (4096 values forward,
  2048 backward; channels_last 2048 and 1024) twice, statistics then output (backward: the
  four sums, then dx), so no plane is held in registers (a whole 128x128 plane took 128
  registers a thread at 16 warps, all an SM has for one such program, and spilled up to 592
  bytes). Loads ``3X`` forward (x twice), ``5X`` backward (x and dy twice); DRAM ``2X`` and
  ``3X``: the second sweep re-reads what the program read microseconds before, assumed to
  hit L2. For that the grid is persistent: programs loop over row blocks, and only as many
  run as the compiled kernel lets an SM hold (``_triton_launch.programs_per_sm``) and as keep
  the bytes all running programs sweep within ``_L2_SHARE`` (3/4) of the L2 (an H100's 50
  MB, 132 SMs): a 128x128 plane is 64 KiB of fp32 (forward: at most 4 programs a SM, 33 MiB a
  wave) or 128 KiB of x + dy (backward: 2 a SM, 33 MiB); fp16/bf16 half that. The L2 hit is
  assumed from cache sizes, not measured (no GPU was available).
- **split** (bigger planes): pass 1 gives each chunk of a plane its own mean and sum of squared
  deviations (merged over the chunk's sub-tiles with Chan's update, then over the chunks in a
  fixed order by a small finalize kernel: deterministic, no atomics, no E[u^2] - E[u]^2
  cancellation); pass 2 re-reads x and writes y. Loads = DRAM = ``3X`` forward (x read twice),
  ``5X`` backward (x and dy read twice): a separate launch re-reads a whole tensor, which L2
  does not hold. Holding a plane on chip between the passes needs a grid-wide barrier, which
  Triton cannot express safely (a spin-wait deadlocks under the interpreter and whenever the
  programs of a plane are not co-resident); torch.compile's reduction-then-pointwise code
  pays the same re-read at every plane size.
- **dnoise** (only when noise requires grad, which StyleGAN's drawn noise does not): a separate
  kernel re-reads x and dy and reduces over channels (``+2X``), keeping the main kernels free of
  a cross-plane reduction.

Launches: one pass, one forward, one backward (adain) or two (layer_epilogue: + the ordered
batch sum of the dbias/dnoise_strength partials); split, three each (+ the batch sum).

fp16/bf16 compute in float32 (float64 for float64); every reduction has a fixed order, so
results are bitwise reproducible (a persistent program sums its planes exactly as a program
per plane would). Scalars (slopes, eps) are runtime float32 hi/lo pairs
(``_triton_launch.float32_split``): a new value compiles nothing, and float64 keeps them to
~2^-48.

Block sizes: on CUDA they follow register counts ptxas reported for sm_90 (see ``_CUDA``; no
kernel has been timed on a GPU yet): every plan leaves room for two resident programs per SM
and spills nothing, under Triton 3.6 and 3.9 (``.ci/compile_triton.py``). On CPU tensors
(``TRITON_INTERPRET=1``) programs take as much as possible while small test shapes still reach
every plan: whole planes up to 32 pixels, the sweep (two sub-tiles a sweep) up to 4096, the
split plan above.
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from .. import _library
from . import _triton_launch as tl_launch

INTERPRETING = tl_launch.INTERPRETING

# ---------------------------------------------------------------------------------------------
# Kernels


@triton.jit
def _rows(block, N, C, BLOCK_C: tl.constexpr, CHANNELS_LAST: tl.constexpr):
    """The planes row block ``block`` holds, as [BLOCK_C] vectors ``(n, c, plane = n*C + c,
    valid)``, and its sample (channels_last; 0 for NCHW). NCHW: consecutive planes (contiguous
    in memory); channels_last: a block of channels of one sample (contiguous within each
    pixel)."""
    lanes = tl.arange(0, BLOCK_C)
    if CHANNELS_LAST:
        blocks = tl.cdiv(C, BLOCK_C)
        sample = block // blocks
        c = ((block - sample * blocks) * BLOCK_C + lanes).to(tl.int64)
        # A splat, so the compiler sees x's addresses contiguous along the channels.
        n = tl.zeros([BLOCK_C], tl.int64) + sample
        valid = c < C
        plane = n * C + c
    else:
        sample = 0
        plane = tl.cast(block, tl.int64) * BLOCK_C + lanes
        valid = plane < N * C
        n = plane // C
        c = plane - n * C
    return n, c, plane, valid, sample


@triton.jit
def _activation_tile(
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    n,
    sample,
    c,
    plane,
    valid,
    hw,
    C,
    HW,
    noise_stride,
    slope_pos,
    slope_neg,
    ACC: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    """A [BLOCK_C, BLOCK_HW] tile of the prologue: (offsets, mask, u, slope, noise). Masked
    entries of u are NOT zero (the prologue of x = 0): callers mask before reducing. noise is
    [1, BLOCK_HW] for channels_last (one noise row serves every channel of the sample: loaded
    once per pixel, in the layout the tile broadcasts it to)."""
    mask = valid[:, None] & (hw < HW)[None, :]
    if CHANNELS_LAST:
        offs = (tl.cast(sample, tl.int64) * HW * C) + (c.to(tl.int32)[:, None] + hw[None, :] * C)
    else:
        offs = (plane * HW)[:, None] + hw[None, :]
    v = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    noise = 0.0
    if HAS_NOISE:
        if CHANNELS_LAST:
            noise_row = noise_ptr + tl.cast(sample, tl.int64) * noise_stride
            noise = tl.load(noise_row + hw, mask=hw < HW, other=0.0).to(ACC)[None, :]
        else:
            noise = tl.load(
                noise_ptr + (n * noise_stride)[:, None] + hw[None, :], mask=mask, other=0.0
            ).to(ACC)
        strength = tl.load(strength_ptr + c, mask=valid, other=0.0).to(ACC)
        v = v + strength[:, None] * noise
    if HAS_BIAS:
        v = v + tl.load(bias_ptr + c, mask=valid, other=0.0).to(ACC)[:, None]
    slope = 1.0
    u = v
    if HAS_ACT:
        # One multiply by a selected slope: NaN takes slope_neg and stays NaN.
        slope = tl.where(v > 0, slope_pos, slope_neg)
        u = v * slope
    return offs, mask, u, slope, noise


@triton.jit
def _moments(
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    n,
    sample,
    c,
    plane,
    valid,
    C,
    HW,
    noise_stride,
    start,
    end,
    slope_pos,
    slope_neg,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    """``(mean, m2)`` of u over pixels ``[start, end)`` of each row: exact two-pass per
    SUB_HW sub-tile, the sub-tiles merged in order with Chan's update (no E[u^2] - E[u]^2
    cancellation)."""
    mean = tl.zeros([BLOCK_C], ACC)
    m2 = tl.zeros([BLOCK_C], ACC)
    count = tl.zeros([BLOCK_C], ACC)
    for i in range(0, tl.cdiv(end - start, SUB_HW)):
        sub_start = start + i * SUB_HW
        hw = sub_start + tl.arange(0, SUB_HW)
        _offs, mask, u, _slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, hw, C, HW,
            noise_stride, slope_pos, slope_neg, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        sub_count = tl.minimum(end - sub_start, SUB_HW).to(ACC)
        sub_mean = tl.sum(tl.where(mask, u, 0.0), axis=1) / sub_count
        centered = tl.where(mask, u - sub_mean[:, None], 0.0)
        sub_m2 = tl.sum(centered * centered, axis=1)
        total = count + sub_count
        delta = sub_mean - mean
        mean = mean + delta * (sub_count / total)
        m2 = m2 + sub_m2 + delta * delta * (count * sub_count / total)
        count = total
    return mean, m2


@triton.jit
def _write_output(
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    y_ptr,
    n,
    sample,
    c,
    plane,
    valid,
    C,
    HW,
    noise_stride,
    start,
    end,
    mean,
    a,
    b,
    slope_pos,
    slope_neg,
    ACC: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    """``y = (u - mean) * a + b`` over pixels ``[start, end)``, a SUB_HW sub-tile at a time."""
    # A counted loop (not range(start, end, SUB_HW)): with the bound a loop variable, ptxas
    # (Triton 3.6) kept `end` on the stack, an 8-byte spill at 40 registers.
    for i in range(0, tl.cdiv(end - start, SUB_HW)):
        hw = start + i * SUB_HW + tl.arange(0, SUB_HW)
        offs, mask, u, _slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, hw, C, HW,
            noise_stride, slope_pos, slope_neg, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        y = (u - mean[:, None]) * a[:, None] + b[:, None]
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


# row_blocks and programs (the grid) bound and stride the persistent loop of a sweep plan; the
# grid follows the compiled kernel's occupancy, so neither is specialised on (the kernel compiled
# to measure it is the one launched). (programs, not tl.num_programs(0): Triton 3.6's
# interpreter cannot range over the latter.)
@triton.jit(do_not_specialize=["row_blocks", "programs"])
def _forward_one_pass(
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    scale_ptr,
    style_bias_ptr,
    y_ptr,
    mean_ptr,
    rstd_ptr,
    N,
    C,
    HW,
    noise_stride,
    row_blocks,
    programs,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    eps_hi,
    eps_lo,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
    SWEEP: tl.constexpr,
):
    # Whole planes per program, row blocks pid, pid + programs, ... Without SWEEP the tile
    # holds the planes (BLOCK_HW >= HW): read x once, write y once (the 2X minimum). With SWEEP
    # the planes are swept in BLOCK_HW sub-tiles twice, statistics then output: x is loaded
    # twice, the second time from L2 (see the module docstring).
    slope_pos = tl_launch.join_float32(slope_pos_hi, slope_pos_lo, ACC)
    slope_neg = tl_launch.join_float32(slope_neg_hi, slope_neg_lo, ACC)
    for block in range(tl.program_id(0), row_blocks, programs):
        n, c, plane, valid, sample = _rows(block, N, C, BLOCK_C, CHANNELS_LAST)
        scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
        b = tl.load(style_bias_ptr + plane, mask=valid, other=0.0).to(ACC)
        if SWEEP:
            mean, m2 = _moments(
                x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, C, HW,
                noise_stride, 0, HW, slope_pos, slope_neg, ACC, BLOCK_C, BLOCK_HW, CHANNELS_LAST,
                HAS_NOISE, HAS_BIAS, HAS_ACT,
            )  # fmt: skip
            rstd = 1.0 / tl.sqrt(m2 / HW + tl_launch.join_float32(eps_hi, eps_lo, ACC))
            _write_output(
                x_ptr, noise_ptr, strength_ptr, bias_ptr, y_ptr, n, sample, c, plane, valid, C,
                HW, noise_stride, 0, HW, mean, rstd * scale, b, slope_pos, slope_neg, ACC,
                BLOCK_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
            )  # fmt: skip
        else:
            hw = tl.arange(0, BLOCK_HW)
            offs, mask, u, _slope, _noise = _activation_tile(
                x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, hw, C, HW,
                noise_stride, slope_pos, slope_neg, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS,
                HAS_ACT,
            )  # fmt: skip
            mean = tl.sum(tl.where(mask, u, 0.0), axis=1) / HW
            centered = tl.where(mask, u - mean[:, None], 0.0)
            var = tl.sum(centered * centered, axis=1) / HW
            rstd = 1.0 / tl.sqrt(var + tl_launch.join_float32(eps_hi, eps_lo, ACC))
            y = centered * (rstd * scale)[:, None] + b[:, None]
            tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)
        tl.store(mean_ptr + plane, mean, mask=valid)
        tl.store(rstd_ptr + plane, rstd, mask=valid)


@triton.jit
def _forward_chunk_statistics(
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    chunk_mean_ptr,
    chunk_m2_ptr,
    N,
    C,
    HW,
    noise_stride,
    chunk_hw,
    chunks,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    # Split pass 1: the mean and sum of squared deviations of one chunk of chunk_hw pixels.
    slope_pos = tl_launch.join_float32(slope_pos_hi, slope_pos_lo, ACC)
    slope_neg = tl_launch.join_float32(slope_neg_hi, slope_neg_lo, ACC)
    n, c, plane, valid, sample = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    chunk = tl.program_id(1)
    start = chunk * chunk_hw
    mean, m2 = _moments(
        x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, C, HW, noise_stride,
        start, tl.minimum(start + chunk_hw, HW), slope_pos, slope_neg, ACC, BLOCK_C, SUB_HW,
        CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
    )  # fmt: skip
    tl.store(chunk_mean_ptr + plane * chunks + chunk, mean, mask=valid)
    tl.store(chunk_m2_ptr + plane * chunks + chunk, m2, mask=valid)


@triton.jit
def _forward_finalize(
    chunk_mean_ptr,
    chunk_m2_ptr,
    mean_ptr,
    rstd_ptr,
    P,
    HW,
    chunk_hw,
    chunks,
    eps_hi,
    eps_lo,
    ACC: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    # Merges the chunks of each plane at once: mean = sum_k n_k mean_k / HW,
    # M2 = sum_k (M2_k + n_k (mean_k - mean)^2). Fixed order: deterministic.
    plane = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    k = tl.arange(0, BLOCK_K)
    mask = (plane < P)[:, None] & (k < chunks)[None, :]
    offs = plane[:, None] * chunks + k[None, :]
    chunk_mean = tl.load(chunk_mean_ptr + offs, mask=mask, other=0.0)
    chunk_m2 = tl.load(chunk_m2_ptr + offs, mask=mask, other=0.0)
    counts = tl.minimum(HW - k * chunk_hw, chunk_hw).to(ACC)[None, :]
    mean = tl.sum(tl.where(mask, chunk_mean * counts, 0.0), axis=1) / HW
    spread = chunk_mean - mean[:, None]
    m2 = tl.sum(tl.where(mask, chunk_m2 + counts * spread * spread, 0.0), axis=1)
    rstd = 1.0 / tl.sqrt(m2 / HW + tl_launch.join_float32(eps_hi, eps_lo, ACC))
    tl.store(mean_ptr + plane, mean, mask=plane < P)
    tl.store(rstd_ptr + plane, rstd, mask=plane < P)


@triton.jit
def _forward_apply(
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    scale_ptr,
    style_bias_ptr,
    mean_ptr,
    rstd_ptr,
    y_ptr,
    N,
    C,
    HW,
    noise_stride,
    chunk_hw,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    # Split pass 2: re-read x, write y.
    slope_pos = tl_launch.join_float32(slope_pos_hi, slope_pos_lo, ACC)
    slope_neg = tl_launch.join_float32(slope_neg_hi, slope_neg_lo, ACC)
    n, c, plane, valid, sample = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    start = tl.program_id(1) * chunk_hw
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    a = rstd * tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    b = tl.load(style_bias_ptr + plane, mask=valid, other=0.0).to(ACC)
    _write_output(
        x_ptr, noise_ptr, strength_ptr, bias_ptr, y_ptr, n, sample, c, plane, valid, C, HW,
        noise_stride, start, tl.minimum(start + chunk_hw, HW), mean, a, b, slope_pos, slope_neg,
        ACC, SUB_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
    )  # fmt: skip


@triton.jit
def _input_gradient(dy, u, slope, scale, mean, rstd, mean_g, mean_g_u_hat, HAS_ACT: tl.constexpr):
    """dt of a tile from its per-plane coefficients ([BLOCK_C] vectors)."""
    u_hat = (u - mean[:, None]) * rstd[:, None]
    g = dy * scale[:, None]
    dt = rstd[:, None] * (g - mean_g[:, None] - u_hat * mean_g_u_hat[:, None])
    if HAS_ACT:
        dt = dt * slope
    return dt


@triton.jit
def _gradient_sums(
    dy_ptr,
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    n,
    sample,
    c,
    plane,
    valid,
    C,
    HW,
    noise_stride,
    start,
    end,
    mean,
    rstd,
    scale,
    slope_pos,
    slope_neg,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    """Sums over pixels ``[start, end)`` of dy, dy * u_hat, g and g * u_hat (g = dy * scale),
    a SUB_HW sub-tile at a time."""
    sum_dy = tl.zeros([BLOCK_C], ACC)
    sum_dy_u_hat = tl.zeros([BLOCK_C], ACC)
    sum_g = tl.zeros([BLOCK_C], ACC)
    sum_g_u_hat = tl.zeros([BLOCK_C], ACC)
    for i in range(0, tl.cdiv(end - start, SUB_HW)):
        sub_start = start + i * SUB_HW
        hw = sub_start + tl.arange(0, SUB_HW)
        offs, mask, u, _slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, hw, C, HW,
            noise_stride, slope_pos, slope_neg, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        u_hat = tl.where(mask, (u - mean[:, None]) * rstd[:, None], 0.0)
        # Masked: 0 * an infinite scale would put NaN into the sums.
        g = tl.where(mask, dy * scale[:, None], 0.0)
        sum_dy += tl.sum(dy, axis=1)
        sum_dy_u_hat += tl.sum(dy * u_hat, axis=1)
        sum_g += tl.sum(g, axis=1)
        sum_g_u_hat += tl.sum(g * u_hat, axis=1)
    return sum_dy, sum_dy_u_hat, sum_g, sum_g_u_hat


@triton.jit
def _write_input_gradient(
    dy_ptr,
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    dx_ptr,
    n,
    sample,
    c,
    plane,
    valid,
    C,
    HW,
    noise_stride,
    start,
    end,
    mean,
    rstd,
    scale,
    mean_g,
    mean_g_u_hat,
    slope_pos,
    slope_neg,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
    STORE_DX: tl.constexpr,
    STORE_DBIAS: tl.constexpr,
    STORE_DSTRENGTH: tl.constexpr,
):
    """dx over pixels ``[start, end)``, a SUB_HW sub-tile at a time; returns the sums of dt and
    dt * noise over them (dbias's and dnoise_strength's share)."""
    sum_dt = tl.zeros([BLOCK_C], ACC)
    sum_dt_noise = tl.zeros([BLOCK_C], ACC)
    for i in range(0, tl.cdiv(end - start, SUB_HW)):
        sub_start = start + i * SUB_HW
        hw = sub_start + tl.arange(0, SUB_HW)
        offs, mask, u, slope, noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, hw, C, HW,
            noise_stride, slope_pos, slope_neg, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        dt = _input_gradient(dy, u, slope, scale, mean, rstd, mean_g, mean_g_u_hat, HAS_ACT)
        if STORE_DX:
            tl.store(dx_ptr + offs, dt.to(dx_ptr.dtype.element_ty), mask=mask)
        if STORE_DBIAS:
            sum_dt += tl.sum(tl.where(mask, dt, 0.0), axis=1)
        if STORE_DSTRENGTH:
            sum_dt_noise += tl.sum(tl.where(mask, dt * noise, 0.0), axis=1)
    return sum_dt, sum_dt_noise


@triton.jit
def _store_partials(
    partials_ptr,
    sum_dt,
    sum_dt_noise,
    row,
    R,
    c,
    valid,
    C,
    STORE_DBIAS: tl.constexpr,
    STORE_DSTRENGTH: tl.constexpr,
):
    """A program's sums of dbias and dnoise_strength into partials[group, row, c] (R rows a
    group: one per sample and chunk); the batch sum is a separate, ordered column reduction."""
    if STORE_DBIAS:
        tl.store(partials_ptr + row * C + c, sum_dt, mask=valid)
    if STORE_DSTRENGTH:
        group = 1 if STORE_DBIAS else 0
        tl.store(partials_ptr + (group * R + row) * C + c, sum_dt_noise, mask=valid)


@triton.jit
def _plane_coefficients(sum_g, sum_g_u_hat, HW):
    """mean_hw(g) and mean_hw(g * u_hat), the input gradient's coefficients. The reference's
    autograd spreads an Inf or NaN of these sums over the whole plane (through the mean and
    variance) as NaN; the factored formula would leave some +-Inf."""
    mean_g = sum_g / HW
    mean_g_u_hat = sum_g_u_hat / HW
    finite = (tl.abs(mean_g) < float("inf")) & (tl.abs(mean_g_u_hat) < float("inf"))
    return tl.where(finite, mean_g, float("nan")), mean_g_u_hat


# row_blocks and programs: the persistent loop of a sweep plan (see _forward_one_pass).
@triton.jit(do_not_specialize=["row_blocks", "programs"])
def _backward_one_pass(
    dy_ptr,
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    scale_ptr,
    mean_ptr,
    rstd_ptr,
    dx_ptr,
    dscale_ptr,
    dstyle_bias_ptr,
    coeff_ptr,
    partials_ptr,
    N,
    C,
    HW,
    noise_stride,
    row_blocks,
    programs,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
    STORE_DX: tl.constexpr,
    STORE_DSCALE: tl.constexpr,
    STORE_DSTYLE_BIAS: tl.constexpr,
    STORE_COEFFS: tl.constexpr,
    STORE_DBIAS: tl.constexpr,
    STORE_DSTRENGTH: tl.constexpr,
    SWEEP: tl.constexpr,
):
    # Whole planes per program (row blocks pid, pid + programs, ...); the plane sums never
    # leave the program. Without SWEEP the tile holds the planes: x and dy read once, dx
    # written once (the 3X minimum). With SWEEP the planes are swept in BLOCK_HW sub-tiles
    # twice, sums then dx: x and dy are loaded twice, the second time from L2.
    slope_pos = tl_launch.join_float32(slope_pos_hi, slope_pos_lo, ACC)
    slope_neg = tl_launch.join_float32(slope_neg_hi, slope_neg_lo, ACC)
    for block in range(tl.program_id(0), row_blocks, programs):
        n, c, plane, valid, sample = _rows(block, N, C, BLOCK_C, CHANNELS_LAST)
        mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
        rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
        scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
        if SWEEP:
            sum_dy, sum_dy_u_hat, sum_g, sum_g_u_hat = _gradient_sums(
                dy_ptr, x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, C,
                HW, noise_stride, 0, HW, mean, rstd, scale, slope_pos, slope_neg, ACC, BLOCK_C,
                BLOCK_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
            )  # fmt: skip
        else:
            hw = tl.arange(0, BLOCK_HW)
            offs, mask, u, slope, noise = _activation_tile(
                x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, hw, C, HW,
                noise_stride, slope_pos, slope_neg, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS,
                HAS_ACT,
            )  # fmt: skip
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
            u_hat = tl.where(mask, (u - mean[:, None]) * rstd[:, None], 0.0)
            # Masked: 0 * an infinite scale would put NaN into the sums.
            g = tl.where(mask, dy * scale[:, None], 0.0)
            sum_dy = tl.sum(dy, axis=1)
            sum_dy_u_hat = tl.sum(dy * u_hat, axis=1)
            sum_g = tl.sum(g, axis=1)
            sum_g_u_hat = tl.sum(g * u_hat, axis=1)
        if STORE_DSCALE:
            dscale = sum_dy_u_hat.to(dscale_ptr.dtype.element_ty)
            tl.store(dscale_ptr + plane, dscale, mask=valid)
        if STORE_DSTYLE_BIAS:
            dstyle_bias = sum_dy.to(dstyle_bias_ptr.dtype.element_ty)
            tl.store(dstyle_bias_ptr + plane, dstyle_bias, mask=valid)
        if STORE_DX or STORE_COEFFS or STORE_DBIAS or STORE_DSTRENGTH:
            mean_g, mean_g_u_hat = _plane_coefficients(sum_g, sum_g_u_hat, HW)
            if STORE_COEFFS:
                tl.store(coeff_ptr + plane, mean_g, mask=valid)
                tl.store(coeff_ptr + N * C + plane, mean_g_u_hat, mask=valid)
            if SWEEP:
                sum_dt, sum_dt_noise = _write_input_gradient(
                    dy_ptr, x_ptr, noise_ptr, strength_ptr, bias_ptr, dx_ptr, n, sample, c, plane,
                    valid, C, HW, noise_stride, 0, HW, mean, rstd, scale, mean_g, mean_g_u_hat,
                    slope_pos, slope_neg, ACC, BLOCK_C, BLOCK_HW, CHANNELS_LAST, HAS_NOISE,
                    HAS_BIAS, HAS_ACT, STORE_DX, STORE_DBIAS, STORE_DSTRENGTH,
                )  # fmt: skip
            else:
                dt = _input_gradient(dy, u, slope, scale, mean, rstd, mean_g, mean_g_u_hat, HAS_ACT)
                if STORE_DX:
                    tl.store(dx_ptr + offs, dt.to(dx_ptr.dtype.element_ty), mask=mask)
                sum_dt = tl.zeros([BLOCK_C], ACC)
                sum_dt_noise = tl.zeros([BLOCK_C], ACC)
                if STORE_DBIAS:
                    sum_dt = tl.sum(tl.where(mask, dt, 0.0), axis=1)
                if STORE_DSTRENGTH:
                    sum_dt_noise = tl.sum(tl.where(mask, dt * noise, 0.0), axis=1)
            _store_partials(
                partials_ptr, sum_dt, sum_dt_noise, n, N, c, valid, C, STORE_DBIAS, STORE_DSTRENGTH
            )


@triton.jit
def _backward_chunk_sums(
    dy_ptr,
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    scale_ptr,
    mean_ptr,
    rstd_ptr,
    sums_ptr,
    N,
    C,
    HW,
    noise_stride,
    chunk_hw,
    chunks,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    # Split pass 1: per chunk, sum dy, dy * u_hat, g and g * u_hat into sums[4, P, chunks].
    slope_pos = tl_launch.join_float32(slope_pos_hi, slope_pos_lo, ACC)
    slope_neg = tl_launch.join_float32(slope_neg_hi, slope_neg_lo, ACC)
    n, c, plane, valid, sample = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    chunk = tl.program_id(1)
    start = chunk * chunk_hw
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    sum_dy, sum_dy_u_hat, sum_g, sum_g_u_hat = _gradient_sums(
        dy_ptr, x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, C, HW,
        noise_stride, start, tl.minimum(start + chunk_hw, HW), mean, rstd, scale, slope_pos,
        slope_neg, ACC, BLOCK_C, SUB_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
    )  # fmt: skip
    stride = N * C * chunks
    offs = plane * chunks + chunk
    tl.store(sums_ptr + offs, sum_dy, mask=valid)
    tl.store(sums_ptr + stride + offs, sum_dy_u_hat, mask=valid)
    tl.store(sums_ptr + 2 * stride + offs, sum_g, mask=valid)
    tl.store(sums_ptr + 3 * stride + offs, sum_g_u_hat, mask=valid)


@triton.jit
def _backward_finalize(
    sums_ptr,
    dscale_ptr,
    dstyle_bias_ptr,
    coeff_ptr,
    P,
    HW,
    chunks,
    ACC: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_K: tl.constexpr,
    STORE_DSCALE: tl.constexpr,
    STORE_DSTYLE_BIAS: tl.constexpr,
):
    # Sums the chunks of each plane in a fixed order: dscale, dstyle_bias, and the two means
    # the input gradient needs, coeff[2, P].
    plane = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    valid = plane < P
    k = tl.arange(0, BLOCK_K)
    mask = valid[:, None] & (k < chunks)[None, :]
    offs = plane[:, None] * chunks + k[None, :]
    stride = P * chunks
    if STORE_DSTYLE_BIAS:
        sum_dy = tl.sum(tl.load(sums_ptr + offs, mask=mask, other=0.0), axis=1)
        tl.store(dstyle_bias_ptr + plane, sum_dy.to(dstyle_bias_ptr.dtype.element_ty), mask=valid)
    if STORE_DSCALE:
        sum_dy_u_hat = tl.sum(tl.load(sums_ptr + stride + offs, mask=mask, other=0.0), axis=1)
        tl.store(dscale_ptr + plane, sum_dy_u_hat.to(dscale_ptr.dtype.element_ty), mask=valid)
    sum_g = tl.sum(tl.load(sums_ptr + 2 * stride + offs, mask=mask, other=0.0), axis=1)
    sum_g_u_hat = tl.sum(tl.load(sums_ptr + 3 * stride + offs, mask=mask, other=0.0), axis=1)
    mean_g, mean_g_u_hat = _plane_coefficients(sum_g, sum_g_u_hat, HW)
    tl.store(coeff_ptr + plane, mean_g, mask=valid)
    tl.store(coeff_ptr + P + plane, mean_g_u_hat, mask=valid)


@triton.jit
def _backward_apply(
    dy_ptr,
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    scale_ptr,
    mean_ptr,
    rstd_ptr,
    coeff_ptr,
    dx_ptr,
    partials_ptr,
    N,
    C,
    HW,
    noise_stride,
    chunk_hw,
    chunks,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
    STORE_DX: tl.constexpr,
    STORE_DBIAS: tl.constexpr,
    STORE_DSTRENGTH: tl.constexpr,
):
    # Split pass 2: re-read x and dy, write dx and the chunk's parameter partials.
    slope_pos = tl_launch.join_float32(slope_pos_hi, slope_pos_lo, ACC)
    slope_neg = tl_launch.join_float32(slope_neg_hi, slope_neg_lo, ACC)
    n, c, plane, valid, sample = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    chunk = tl.program_id(1)
    start = chunk * chunk_hw
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    mean_g = tl.load(coeff_ptr + plane, mask=valid, other=0.0)
    mean_g_u_hat = tl.load(coeff_ptr + N * C + plane, mask=valid, other=0.0)
    sum_dt, sum_dt_noise = _write_input_gradient(
        dy_ptr, x_ptr, noise_ptr, strength_ptr, bias_ptr, dx_ptr, n, sample, c, plane, valid, C,
        HW, noise_stride, start, tl.minimum(start + chunk_hw, HW), mean, rstd, scale, mean_g,
        mean_g_u_hat, slope_pos, slope_neg, ACC, BLOCK_C, SUB_HW, CHANNELS_LAST, HAS_NOISE,
        HAS_BIAS, HAS_ACT, STORE_DX, STORE_DBIAS, STORE_DSTRENGTH,
    )  # fmt: skip
    _store_partials(
        partials_ptr, sum_dt, sum_dt_noise, n * chunks + chunk, N * chunks, c, valid, C,
        STORE_DBIAS, STORE_DSTRENGTH,
    )  # fmt: skip


@triton.jit
def _noise_gradient(
    dy_ptr,
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    scale_ptr,
    mean_ptr,
    rstd_ptr,
    coeff_ptr,
    out_ptr,
    N,
    C,
    HW,
    noise_stride,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    ACC: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    # out[n, hw] = sum_c dt[n, c, hw] * noise_strength[c], channels summed in order within the
    # program: re-reads x and dy (2X) instead of a cross-plane reduction in the main kernels.
    # Pixel blocks on grid axis 0 (up to 2^31 - 1 programs; axis 1 stops at 65535).
    slope_pos = tl_launch.join_float32(slope_pos_hi, slope_pos_lo, ACC)
    slope_neg = tl_launch.join_float32(slope_neg_hi, slope_neg_lo, ACC)
    sample = tl.program_id(1)
    hw = tl.program_id(0) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    n = tl.zeros([BLOCK_C], tl.int64) + sample
    total = tl.zeros([BLOCK_HW], ACC)
    for c0 in range(0, C, BLOCK_C):
        c = (c0 + tl.arange(0, BLOCK_C)).to(tl.int64)
        valid = c < C
        plane = n * C + c
        offs, mask, u, slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, sample, c, plane, valid, hw, C, HW,
            noise_stride, slope_pos, slope_neg, ACC, CHANNELS_LAST, True, HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
        rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
        scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
        mean_g = tl.load(coeff_ptr + plane, mask=valid, other=0.0)
        mean_g_u_hat = tl.load(coeff_ptr + N * C + plane, mask=valid, other=0.0)
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        dt = _input_gradient(dy, u, slope, scale, mean, rstd, mean_g, mean_g_u_hat, HAS_ACT)
        strength = tl.load(strength_ptr + c, mask=valid, other=0.0).to(ACC)
        total += tl.sum(tl.where(mask, dt * strength[:, None], 0.0), axis=0)
    out_offs = sample.to(tl.int64) * HW + hw
    tl.store(out_ptr + out_offs, total.to(out_ptr.dtype.element_ty), mask=hw < HW)


@triton.jit
def _column_sums(
    src_ptr,
    out0_ptr,
    out1_ptr,
    R,
    COLS,
    BLOCK_R: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    # out_g[col] = sum_r src[g, r, col], rows added in a fixed order; group 0 -> out0, 1 -> out1.
    group = tl.program_id(1)
    cols = tl.program_id(0).to(tl.int64) * BLOCK_COLS + tl.arange(0, BLOCK_COLS)
    col_valid = cols < COLS
    base = src_ptr + group.to(tl.int64) * R * COLS
    acc = tl.zeros([BLOCK_R, BLOCK_COLS], src_ptr.dtype.element_ty)
    for r0 in range(0, R, BLOCK_R):
        r = r0 + tl.arange(0, BLOCK_R)
        mask = (r < R)[:, None] & col_valid[None, :]
        acc += tl.load(base + r.to(tl.int64)[:, None] * COLS + cols[None, :], mask=mask, other=0.0)
    total = tl.sum(acc, axis=0)
    if group == 0:
        tl.store(out0_ptr + cols, total.to(out0_ptr.dtype.element_ty), mask=col_valid)
    else:
        tl.store(out1_ptr + cols, total.to(out1_ptr.dtype.element_ty), mask=col_valid)


# ---------------------------------------------------------------------------------------------
# Plans


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


def _warps(values: int) -> int:
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
        warps = _warps(block_c * block_hw * scalar * divided)
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


def _one_pass_grid(plan: Plan, x: torch.Tensor, kernel, swept_tensors: int, args, kwargs) -> int:
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


def _acc_dtype(x: torch.Tensor):
    return tl.float64 if x.dtype == torch.float64 else tl.float32


def statistics_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _noise_stride(noise: torch.Tensor | None, n: int, hw: int) -> int:
    return hw if noise is not None and noise.shape[0] == n and n != 1 else 0


# ---------------------------------------------------------------------------------------------
# Launchers (inputs already checked by the op's own triton.py)


def forward(
    x: torch.Tensor,
    noise: torch.Tensor | None,
    noise_strength: torch.Tensor | None,
    bias: torch.Tensor | None,
    scale: torch.Tensor,
    style_bias: torch.Tensor,
    slopes: tuple[float, float] | None,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y, mean, rstd)``; ``slopes = (slope_pos, slope_neg)`` of the activation, or None for
    the identity. ``noise`` and ``noise_strength`` are both given or both None."""
    fmt = _library.kernel_memory_format(x)
    channels_last = fmt == torch.channels_last
    x = x.contiguous(memory_format=fmt)
    n, c, h, w = x.shape
    hw = h * w
    y = _library.new_output(x.shape, x, fmt)
    stats_dtype = statistics_dtype(x.dtype)
    mean = _library.new_output((n, c), x, dtype=stats_dtype)
    rstd = _library.new_output((n, c), x, dtype=stats_dtype)
    if n * c == 0:
        return y, mean, rstd
    if hw == 0:
        # The mean and variance of no values, as the reference gives them.
        mean.fill_(float("nan"))
        rstd.fill_(float("nan"))
        return y, mean, rstd
    plan = plan_for(x, channels_last)
    has_noise = noise_strength is not None
    noise = noise.contiguous() if has_noise else None
    # Absent optional tensors: any valid pointer, never read (their flags are off).
    noise_arg = noise if has_noise else x
    strength_arg = noise_strength.contiguous() if has_noise else x
    bias_arg = bias.contiguous() if bias is not None else x
    scale, style_bias = scale.contiguous(), style_bias.contiguous()
    slope_pos, slope_neg = slopes if slopes is not None else (1.0, 1.0)
    flags = dict(
        ACC=_acc_dtype(x), BLOCK_C=plan.block_c, CHANNELS_LAST=channels_last, HAS_NOISE=has_noise,
        HAS_BIAS=bias is not None, HAS_ACT=slopes is not None, num_warps=plan.num_warps,
    )  # fmt: skip
    slope_args = (*tl_launch.float32_split(slope_pos), *tl_launch.float32_split(slope_neg))
    eps_args = tl_launch.float32_split(eps)
    common = (x, noise_arg, strength_arg, bias_arg)
    noise_stride = _noise_stride(noise, n, hw)
    if plan.one_pass:

        def args(programs):
            return (
                *common, scale, style_bias, y, mean, rstd, n, c, hw, noise_stride,
                plan.row_programs, programs, *slope_args, *eps_args,
            )  # fmt: skip

        kwargs = dict(BLOCK_HW=plan.block_hw, SWEEP=plan.sweep, **flags)
        grid = _one_pass_grid(plan, x, _forward_one_pass, 1, args(1), kwargs)
        tl_launch.launch(_forward_one_pass, (grid,), x, *args(grid), **kwargs)
        return y, mean, rstd
    acc_dtype = statistics_dtype(x.dtype)
    chunk_mean = torch.empty((n * c, plan.chunks), dtype=acc_dtype, device=x.device)
    chunk_m2 = torch.empty_like(chunk_mean)
    grid = (plan.row_programs, plan.chunks)
    tl_launch.launch(
        _forward_chunk_statistics, grid, x, *common, chunk_mean, chunk_m2, n, c, hw, noise_stride,
        plan.chunk_hw, plan.chunks, *slope_args, SUB_HW=plan.block_hw, **flags,
    )  # fmt: skip
    block_p = _finalize_planes(x, n * c, plan.chunks)
    tl_launch.launch(
        _forward_finalize, (triton.cdiv(n * c, block_p),), x, chunk_mean, chunk_m2, mean, rstd,
        n * c, hw, plan.chunk_hw, plan.chunks, *eps_args, ACC=flags["ACC"], BLOCK_P=block_p,
        BLOCK_K=triton.next_power_of_2(plan.chunks),
    )  # fmt: skip
    tl_launch.launch(
        _forward_apply, grid, x, *common, scale, style_bias, mean, rstd, y, n, c, hw,
        noise_stride, plan.chunk_hw, *slope_args, SUB_HW=plan.block_hw, **flags,
    )  # fmt: skip
    return y, mean, rstd


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    noise: torch.Tensor | None,
    noise_strength: torch.Tensor | None,
    bias: torch.Tensor | None,
    scale: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    slopes: tuple[float, float] | None,
    output_mask: tuple[bool, bool, bool, bool, bool, bool],
) -> tuple[torch.Tensor, ...]:
    """``(dx, dnoise, dnoise_strength, dbias, dscale, dstyle_bias)``; an entry whose
    ``output_mask`` is False is an empty tensor. dnoise and dnoise_strength need noise, dbias
    needs bias."""
    want_dx, want_dnoise, want_dstrength, want_dbias, want_dscale, want_dstyle_bias = output_mask
    fmt = _library.kernel_memory_format(x)
    channels_last = fmt == torch.channels_last
    x = x.contiguous(memory_format=fmt)
    dy = dy.contiguous(memory_format=fmt)
    n, c, h, w = x.shape
    hw = h * w
    has_noise = noise_strength is not None
    noise = noise.contiguous() if has_noise else None

    def output(wanted, shape, memory_format=torch.contiguous_format):
        return _library.new_output(shape, x, memory_format) if wanted else x.new_empty([0])

    dx = output(want_dx, x.shape, fmt)
    dnoise = output(want_dnoise, noise.shape if want_dnoise else ())
    dstrength = output(want_dstrength, (c,))
    dbias = output(want_dbias, (c,))
    dscale = output(want_dscale, (n, c))
    dstyle_bias = output(want_dstyle_bias, (n, c))
    grads = (dx, dnoise, dstrength, dbias, dscale, dstyle_bias)
    if x.numel() == 0:
        # Sums over no values; an empty x has nothing to differentiate.
        for g, wanted in zip(grads[1:], output_mask[1:]):
            if wanted:
                g.zero_()
        return grads
    need_dt = want_dx or want_dnoise or want_dstrength or want_dbias
    if not (need_dt or want_dscale or want_dstyle_bias):
        return grads

    plan = plan_for(x, channels_last, backward=True)
    acc_dtype = statistics_dtype(x.dtype)
    device = x.device
    mean, rstd = mean.contiguous(), rstd.contiguous()
    scale = scale.contiguous()
    noise_arg = noise if has_noise else x
    strength_arg = noise_strength.contiguous() if has_noise else x
    bias_arg = bias.contiguous() if bias is not None else x
    slope_pos, slope_neg = slopes if slopes is not None else (1.0, 1.0)
    slope_args = (*tl_launch.float32_split(slope_pos), *tl_launch.float32_split(slope_neg))
    flags = dict(
        ACC=_acc_dtype(x), BLOCK_C=plan.block_c, CHANNELS_LAST=channels_last, HAS_NOISE=has_noise,
        HAS_BIAS=bias is not None, HAS_ACT=slopes is not None, num_warps=plan.num_warps,
    )  # fmt: skip
    noise_stride = _noise_stride(noise, n, hw)
    common = (dy, x, noise_arg, strength_arg, bias_arg, scale, mean, rstd)
    # Per (sample, chunk, channel) partial sums of dbias and dnoise_strength, summed over the
    # batch and the chunks by _column_sums.
    groups = [g for g, wanted in ((dbias, want_dbias), (dstrength, want_dstrength)) if wanted]
    partials = (
        torch.empty((len(groups), n * plan.chunks, c), dtype=acc_dtype, device=device)
        if groups
        else x
    )
    # mean_hw(g) and mean_hw(g * u_hat) per plane: the input gradient's coefficients.
    needs_coeffs = want_dnoise or not plan.one_pass
    coeffs = torch.empty((2, n * c), dtype=acc_dtype, device=device) if needs_coeffs else x
    # Absent outputs: any valid pointer, never written (their flags are off).
    dx_arg = dx if want_dx else x
    dscale_arg = dscale if want_dscale else x
    dstyle_bias_arg = dstyle_bias if want_dstyle_bias else x
    if plan.one_pass:

        def args(programs):
            return (
                *common, dx_arg, dscale_arg, dstyle_bias_arg, coeffs, partials, n, c, hw,
                noise_stride, plan.row_programs, programs, *slope_args,
            )  # fmt: skip

        kwargs = dict(
            BLOCK_HW=plan.block_hw, STORE_DX=want_dx, STORE_DSCALE=want_dscale,
            STORE_DSTYLE_BIAS=want_dstyle_bias, STORE_COEFFS=want_dnoise, STORE_DBIAS=want_dbias,
            STORE_DSTRENGTH=want_dstrength, SWEEP=plan.sweep, **flags,
        )  # fmt: skip
        grid = _one_pass_grid(plan, x, _backward_one_pass, 2, args(1), kwargs)
        tl_launch.launch(_backward_one_pass, (grid,), x, *args(grid), **kwargs)
    else:
        grid = (plan.row_programs, plan.chunks)
        sums = torch.empty((4, n * c, plan.chunks), dtype=acc_dtype, device=device)
        tl_launch.launch(
            _backward_chunk_sums, grid, x, *common, sums, n, c, hw, noise_stride, plan.chunk_hw,
            plan.chunks, *slope_args, SUB_HW=plan.block_hw, **flags,
        )  # fmt: skip
        block_p = _finalize_planes(x, n * c, plan.chunks)
        tl_launch.launch(
            _backward_finalize, (triton.cdiv(n * c, block_p),), x, sums, dscale_arg,
            dstyle_bias_arg, coeffs, n * c, hw, plan.chunks, ACC=flags["ACC"], BLOCK_P=block_p,
            BLOCK_K=triton.next_power_of_2(plan.chunks), STORE_DSCALE=want_dscale,
            STORE_DSTYLE_BIAS=want_dstyle_bias,
        )  # fmt: skip
        if want_dx or want_dbias or want_dstrength:
            tl_launch.launch(
                _backward_apply, grid, x, *common, coeffs, dx_arg, partials, n, c, hw,
                noise_stride, plan.chunk_hw, plan.chunks, *slope_args, SUB_HW=plan.block_hw,
                STORE_DX=want_dx, STORE_DBIAS=want_dbias, STORE_DSTRENGTH=want_dstrength,
                **flags,
            )  # fmt: skip
    if groups:
        _launch_column_sums(partials, groups)
    if want_dnoise:
        _launch_noise_gradient(
            plan, common, coeffs, dnoise, n, c, hw, noise_stride, slope_args, flags
        )
    return grads


def _finalize_planes(x: torch.Tensor, planes: int, chunks: int) -> int:
    """Planes per program of the finalize kernels: 2048 partials a program on the GPU (ptxas:
    a [128, 64] float64 block used 255 registers and spilled)."""
    if not x.is_cuda:
        return triton.next_power_of_2(planes)
    return max(1, 2048 // triton.next_power_of_2(chunks))


def _launch_column_sums(src: torch.Tensor, outs: list[torch.Tensor]) -> None:
    """``outs[g][:] = src[g].sum(0)`` in a fixed order, cast to each output's dtype."""
    groups, rows, cols = src.shape
    block_cols = min(256 if src.is_cuda else 4096, triton.next_power_of_2(cols))
    # GPU: [8, 256] accumulators (a [32, 256] block took 128 registers a thread at 4 warps).
    block_rows = 8 if src.is_cuda else triton.next_power_of_2(rows)
    block_rows = min(block_rows, max(1, 4096 // block_cols))
    tl_launch.launch(
        _column_sums, (triton.cdiv(cols, block_cols), groups), src, src, outs[0], outs[-1], rows,
        cols, BLOCK_R=block_rows, BLOCK_COLS=block_cols,
    )  # fmt: skip


def _launch_noise_gradient(plan, common, coeffs, dnoise, n, c, hw, noise_stride, slope_args, flags):
    dy, x = common[:2]
    budget = _CUDA if x.is_cuda else _INTERPRETER
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
    # A noise plane per sample is written directly; one shared by the batch is summed over
    # the samples afterwards.
    per_sample = dnoise.shape[0] == n
    out = dnoise if per_sample else torch.empty((1, n, hw), dtype=coeffs.dtype, device=x.device)
    tl_launch.launch(
        _noise_gradient, (triton.cdiv(hw, block_hw), n), x, *common, coeffs, out, n, c, hw,
        noise_stride, *slope_args, ACC=flags["ACC"], BLOCK_C=block_c, BLOCK_HW=block_hw,
        CHANNELS_LAST=plan.channels_last, HAS_BIAS=flags["HAS_BIAS"], HAS_ACT=flags["HAS_ACT"],
        num_warps=_warps(block_c * block_hw),
    )  # fmt: skip
    if not per_sample:
        _launch_column_sums(out, [dnoise])


# ---------------------------------------------------------------------------------------------
# Input checks shared by the ops' launchers (RuntimeError, worded like the _C kernels' checks)

# torch dtypes as the C++ checks print them ("must be a Float tensor").
DTYPE_NAMES = {
    torch.float64: "Double",
    torch.float32: "Float",
    torch.float16: "Half",
    torch.bfloat16: "BFloat16",
}


def check_device(label: str, x: torch.Tensor) -> None:
    """CUDA tensors, or CPU tensors under the interpreter; a floating-point x."""
    if not x.is_cuda:
        if x.device.type != "cpu":
            raise RuntimeError(f"{label}: x must be a CUDA tensor, got {x.device}")
        if not INTERPRETING:
            raise RuntimeError(
                f"{label}: CPU tensors need TRITON_INTERPRET=1 set before triton is imported"
            )
    if x.dtype not in DTYPE_NAMES:
        raise RuntimeError(
            f"{label}: x must be float16, bfloat16, float32 or float64, got {x.dtype}"
        )
