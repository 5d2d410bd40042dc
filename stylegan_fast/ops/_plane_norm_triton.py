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

Plans and their memory traffic (``X`` = the bytes of x; noise and the [N, C] / [C] tensors are
1/C of that or less and left out; the minimum is one read of each input and one write of each
output: ``2X`` forward, ``3X`` backward):

- **one pass** (the plane fits one program's registers on the GPU: NCHW planes up to 16384
  pixels, i.e. 128x128; channels_last up to 32x32, a tile keeping 16 channels (forward) or 8
  (backward) contiguous per pixel): one program loads the tile, reduces the statistics on chip
  (an exact two-pass variance over values already loaded) and writes the output. Forward
  ``2X``, backward ``3X``: the minimum. Launches: one forward; one backward (adain), two for
  layer_epilogue (the ordered batch sum of the dbias/dnoise_strength partials). Backward tiles
  above 8192 values (128x128 NCHW) load the tile a second time after the reductions instead of
  keeping it live (it spilled registers otherwise); that second read hits L2 (the program read
  those <= 128 KB just before; ~132 resident tiles are ~17 MB of a 50 MB L2), so DRAM traffic
  stays ``3X`` (assumed from cache sizes, not measured).
- **split** (bigger planes, up to 1024x1024): pass 1 gives each chunk of a plane its own mean and
  sum of squared deviations (merged over the chunk's sub-tiles with Chan's update, then over the
  chunks in a fixed order by a small finalize kernel: deterministic, no atomics, no E[u^2] -
  E[u]^2 cancellation); pass 2 re-reads x and writes y. Forward ``3X`` (x read twice), backward
  ``5X`` (x and dy read twice), three launches each (+ the batch sum). Holding a plane of more
  than ~16k values on chip between the passes needs a grid-wide barrier, which Triton cannot
  express safely (a spin-wait deadlocks under the interpreter and whenever the programs of a
  plane are not co-resident), so these planes pay the re-read; so does torch.compile's
  reduction-then-pointwise code for every plane size.
- **dnoise** (only when noise requires grad, which StyleGAN's drawn noise does not): a separate
  kernel re-reads x and dy and reduces over channels (``+2X``), keeping the main kernels free of
  a cross-plane reduction.

fp16/bf16 compute in float32 (float64 for float64); every reduction has a fixed order, so
results are bitwise reproducible. Scalars (slopes, eps) travel as float32 hi/lo pairs, because
Triton passes Python floats as float32 and float64 inputs need them exact.

Block sizes: on CUDA they follow register counts ptxas reported for sm_90 (see ``_CUDA``; no
kernel has been timed on a GPU yet); on CPU tensors (``TRITON_INTERPRET=1``) programs take as
much as possible while small test shapes still reach the split plan, its sub-tile loop and the
backward's reload.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os

import torch
import triton
import triton.language as tl

from .. import _library

INTERPRETING = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")

# ---------------------------------------------------------------------------------------------
# Kernels


@triton.jit
def _rows(pid, N, C, BLOCK_C: tl.constexpr, CHANNELS_LAST: tl.constexpr):
    """The planes a program's tile rows hold, as [BLOCK_C] vectors: (n, c, plane = n*C + c,
    valid). NCHW: consecutive planes (contiguous in memory); channels_last: a block of channels
    of one sample (contiguous within each pixel)."""
    lanes = tl.arange(0, BLOCK_C)
    if CHANNELS_LAST:
        blocks = tl.cdiv(C, BLOCK_C)
        n_scalar = pid // blocks
        c = ((pid - n_scalar * blocks) * BLOCK_C + lanes).to(tl.int64)
        # A splat, so the compiler sees x's addresses contiguous along the channels.
        n = tl.zeros([BLOCK_C], tl.int64) + n_scalar
        valid = c < C
        plane = n * C + c
    else:
        plane = pid.to(tl.int64) * BLOCK_C + lanes
        valid = plane < N * C
        n = plane // C
        c = plane - n * C
    return n, c, plane, valid


@triton.jit
def _activation_tile(
    x_ptr,
    noise_ptr,
    strength_ptr,
    bias_ptr,
    n,
    c,
    plane,
    valid,
    hw,
    C,
    HW,
    noise_stride,
    slope_pos_hi,
    slope_pos_lo,
    slope_neg_hi,
    slope_neg_lo,
    ACC: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    """A [BLOCK_C, BLOCK_HW] tile of the prologue: (offsets, mask, u, slope, noise). Masked
    entries of u are NOT zero (the prologue of x = 0): callers mask before reducing."""
    mask = valid[:, None] & (hw < HW)[None, :]
    if CHANNELS_LAST:
        offs = (n * HW * C + c)[:, None] + hw.to(tl.int64)[None, :] * C
    else:
        offs = (plane * HW)[:, None] + hw[None, :]
    v = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
    noise = 0.0
    if HAS_NOISE:
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
        slope_pos = tl.cast(slope_pos_hi, ACC) + tl.cast(slope_pos_lo, ACC)
        slope_neg = tl.cast(slope_neg_hi, ACC) + tl.cast(slope_neg_lo, ACC)
        slope = tl.where(v > 0, slope_pos, slope_neg)
        u = v * slope
    return offs, mask, u, slope, noise


@triton.jit
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
):
    # Whole planes per program: read x once, write y once (the 2X minimum).
    n, c, plane, valid = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    hw = tl.arange(0, BLOCK_HW)
    offs, mask, u, _slope, _noise = _activation_tile(
        x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW, noise_stride,
        slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC, CHANNELS_LAST, HAS_NOISE,
        HAS_BIAS, HAS_ACT,
    )  # fmt: skip
    mean = tl.sum(tl.where(mask, u, 0.0), axis=1) / HW
    centered = tl.where(mask, u - mean[:, None], 0.0)
    var = tl.sum(centered * centered, axis=1) / HW
    rstd = 1.0 / tl.sqrt(var + (tl.cast(eps_hi, ACC) + tl.cast(eps_lo, ACC)))
    a = rstd * tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    b = tl.load(style_bias_ptr + plane, mask=valid, other=0.0).to(ACC)
    y = centered * a[:, None] + b[:, None]
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
    # Split pass 1: the mean and sum of squared deviations of one chunk of chunk_hw pixels,
    # exact two-pass per register sub-tile, sub-tiles merged in order with Chan's update.
    n, c, plane, valid = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    chunk = tl.program_id(1)
    start = chunk * chunk_hw
    mean = tl.zeros([BLOCK_C], ACC)
    m2 = tl.zeros([BLOCK_C], ACC)
    count = tl.zeros([BLOCK_C], ACC)
    for sub_start in range(start, tl.minimum(start + chunk_hw, HW), SUB_HW):
        hw = sub_start + tl.arange(0, SUB_HW)
        _offs, mask, u, _slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW, noise_stride,
            slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC, CHANNELS_LAST, HAS_NOISE,
            HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        sub_count = tl.minimum(HW - sub_start, SUB_HW).to(ACC)
        sub_mean = tl.sum(tl.where(mask, u, 0.0), axis=1) / sub_count
        centered = tl.where(mask, u - sub_mean[:, None], 0.0)
        sub_m2 = tl.sum(centered * centered, axis=1)
        total = count + sub_count
        delta = sub_mean - mean
        mean = mean + delta * (sub_count / total)
        m2 = m2 + sub_m2 + delta * delta * (count * sub_count / total)
        count = total
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
    rstd = 1.0 / tl.sqrt(m2 / HW + (tl.cast(eps_hi, ACC) + tl.cast(eps_lo, ACC)))
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
    n, c, plane, valid = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    start = tl.program_id(1) * chunk_hw
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    a = rstd * tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    b = tl.load(style_bias_ptr + plane, mask=valid, other=0.0).to(ACC)
    for sub_start in range(start, tl.minimum(start + chunk_hw, HW), SUB_HW):
        hw = sub_start + tl.arange(0, SUB_HW)
        offs, mask, u, _slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW, noise_stride,
            slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC, CHANNELS_LAST, HAS_NOISE,
            HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        y = (u - mean[:, None]) * a[:, None] + b[:, None]
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


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
def _store_parameter_partials(
    partials_ptr,
    dt,
    noise,
    mask,
    row,
    c,
    valid,
    R,
    C,
    STORE_DBIAS: tl.constexpr,
    STORE_DSTRENGTH: tl.constexpr,
):
    """A tile's sums of dbias and dnoise_strength into partials[group, row, c] (R rows a
    group: one per sample and chunk); the batch sum is a separate, ordered column reduction."""
    if STORE_DBIAS:
        tl.store(partials_ptr + row * C + c, tl.sum(tl.where(mask, dt, 0.0), axis=1), mask=valid)
    if STORE_DSTRENGTH:
        group = 1 if STORE_DBIAS else 0
        partial = tl.sum(tl.where(mask, dt * noise, 0.0), axis=1)
        tl.store(partials_ptr + (group * R + row) * C + c, partial, mask=valid)


@triton.jit
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
    RELOAD: tl.constexpr,
):
    # Whole planes per program: read x and dy from DRAM once, write dx once (the 3X minimum);
    # the plane sums never leave the program. RELOAD (tiles above 8192 values on the GPU):
    # u, slope, dy and noise kept live across the reductions need more than the 128 registers
    # a thread has at 16 warps (ptxas spilled ~300 bytes a thread at 16384 values), so the
    # second phase loads the tile again: this program read it just before, and with ~132
    # resident tiles of <= 128 KB it is still in L2, so DRAM traffic stays 3X.
    n, c, plane, valid = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    hw = tl.arange(0, BLOCK_HW)
    offs, mask, u, slope, noise = _activation_tile(
        x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW, noise_stride,
        slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC, CHANNELS_LAST, HAS_NOISE,
        HAS_BIAS, HAS_ACT,
    )  # fmt: skip
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
    u_hat = tl.where(mask, (u - mean[:, None]) * rstd[:, None], 0.0)
    # Masked: 0 * an infinite scale would put NaN into the sums.
    g = tl.where(mask, dy * scale[:, None], 0.0)
    if STORE_DSCALE:
        tl.store(
            dscale_ptr + plane,
            tl.sum(dy * u_hat, axis=1).to(dscale_ptr.dtype.element_ty),
            mask=valid,
        )
    if STORE_DSTYLE_BIAS:
        dstyle_bias = tl.sum(dy, axis=1).to(dstyle_bias_ptr.dtype.element_ty)
        tl.store(dstyle_bias_ptr + plane, dstyle_bias, mask=valid)
    if STORE_DX or STORE_COEFFS or STORE_DBIAS or STORE_DSTRENGTH:
        mean_g = tl.sum(g, axis=1) / HW
        mean_g_u_hat = tl.sum(g * u_hat, axis=1) / HW
        # The reference's autograd spreads an Inf or NaN of these sums over the whole plane
        # (through the mean and variance) as NaN; the factored formula would leave some +-Inf.
        finite = (tl.abs(mean_g) < float("inf")) & (tl.abs(mean_g_u_hat) < float("inf"))
        mean_g = tl.where(finite, mean_g, float("nan"))
        if STORE_COEFFS:
            tl.store(coeff_ptr + plane, mean_g, mask=valid)
            tl.store(coeff_ptr + N * C + plane, mean_g_u_hat, mask=valid)
        if RELOAD:
            offs, mask, u, slope, noise = _activation_tile(
                x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW,
                noise_stride, slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC,
                CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
            )  # fmt: skip
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        dt = _input_gradient(dy, u, slope, scale, mean, rstd, mean_g, mean_g_u_hat, HAS_ACT)
        if STORE_DX:
            tl.store(dx_ptr + offs, dt.to(dx_ptr.dtype.element_ty), mask=mask)
        _store_parameter_partials(
            partials_ptr, dt, noise, mask, n, c, valid, N, C, STORE_DBIAS, STORE_DSTRENGTH
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
    n, c, plane, valid = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    chunk = tl.program_id(1)
    start = chunk * chunk_hw
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    sum_dy = tl.zeros([BLOCK_C], ACC)
    sum_dy_u_hat = tl.zeros([BLOCK_C], ACC)
    sum_g = tl.zeros([BLOCK_C], ACC)
    sum_g_u_hat = tl.zeros([BLOCK_C], ACC)
    for sub_start in range(start, tl.minimum(start + chunk_hw, HW), SUB_HW):
        hw = sub_start + tl.arange(0, SUB_HW)
        offs, mask, u, _slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW, noise_stride,
            slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC, CHANNELS_LAST, HAS_NOISE,
            HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        u_hat = tl.where(mask, (u - mean[:, None]) * rstd[:, None], 0.0)
        g = tl.where(mask, dy * scale[:, None], 0.0)
        sum_dy += tl.sum(dy, axis=1)
        sum_dy_u_hat += tl.sum(dy * u_hat, axis=1)
        sum_g += tl.sum(g, axis=1)
        sum_g_u_hat += tl.sum(g * u_hat, axis=1)
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
    mean_g = sum_g / HW
    mean_g_u_hat = sum_g_u_hat / HW
    # As in _backward_one_pass: a non-finite sum makes the whole plane's dx NaN.
    finite = (tl.abs(mean_g) < float("inf")) & (tl.abs(mean_g_u_hat) < float("inf"))
    tl.store(coeff_ptr + plane, tl.where(finite, mean_g, float("nan")), mask=valid)
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
    n, c, plane, valid = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    chunk = tl.program_id(1)
    start = chunk * chunk_hw
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    mean_g = tl.load(coeff_ptr + plane, mask=valid, other=0.0)
    mean_g_u_hat = tl.load(coeff_ptr + N * C + plane, mask=valid, other=0.0)
    sum_dt = tl.zeros([BLOCK_C], ACC)
    sum_dt_noise = tl.zeros([BLOCK_C], ACC)
    for sub_start in range(start, tl.minimum(start + chunk_hw, HW), SUB_HW):
        hw = sub_start + tl.arange(0, SUB_HW)
        offs, mask, u, slope, noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW, noise_stride,
            slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC, CHANNELS_LAST, HAS_NOISE,
            HAS_BIAS, HAS_ACT,
        )  # fmt: skip
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        dt = _input_gradient(dy, u, slope, scale, mean, rstd, mean_g, mean_g_u_hat, HAS_ACT)
        if STORE_DX:
            tl.store(dx_ptr + offs, dt.to(dx_ptr.dtype.element_ty), mask=mask)
        if STORE_DBIAS:
            sum_dt += tl.sum(tl.where(mask, dt, 0.0), axis=1)
        if STORE_DSTRENGTH:
            sum_dt_noise += tl.sum(tl.where(mask, dt * noise, 0.0), axis=1)
    row = n * chunks + chunk
    R = N * chunks
    if STORE_DBIAS:
        tl.store(partials_ptr + row * C + c, sum_dt, mask=valid)
    if STORE_DSTRENGTH:
        group = 1 if STORE_DBIAS else 0
        tl.store(partials_ptr + (group * R + row) * C + c, sum_dt_noise, mask=valid)


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
    n_scalar = tl.program_id(1)
    hw = tl.program_id(0) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    n = tl.zeros([BLOCK_C], tl.int64) + n_scalar
    total = tl.zeros([BLOCK_HW], ACC)
    for c0 in range(0, C, BLOCK_C):
        c = (c0 + tl.arange(0, BLOCK_C)).to(tl.int64)
        valid = c < C
        plane = n * C + c
        offs, mask, u, slope, _noise = _activation_tile(
            x_ptr, noise_ptr, strength_ptr, bias_ptr, n, c, plane, valid, hw, C, HW, noise_stride,
            slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC, CHANNELS_LAST, True,
            HAS_BIAS, HAS_ACT,
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
    out_offs = n_scalar.to(tl.int64) * HW + hw
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
    """Block-size limits for one kind of device, in float32 values (float64 halves them)."""

    tile_max: int  # most values of x one program holds in a one-pass plan
    backward_keep_max: int  # larger backward tiles load x and dy again for their second phase
    backward_cl_tile_max: int  # channels_last backward one-pass tiles (no reload)
    tile_target: int  # values per program when several small planes share a program
    min_cl_channels: int  # channels_last forward tiles: fewest channels (a contiguous run)
    split_channels_nchw: int  # planes per program in the split plan
    split_channels_cl: int
    sub_tile: int  # values per loop iteration of the split kernels
    max_chunks: int  # chunks per plane in the split plan (the finalize kernel's block)
    noise_tile: int  # values per iteration of the dnoise kernel


# CUDA. Register counts are ptxas's for sm_90 (Triton 3.9 compiling for the target without a
# GPU; no kernel has been timed): a one-pass forward tile of 16384 values at 16 warps uses
# 111-128 registers a thread and spills nothing, so planes up to 128x128 run in one pass. The
# backward keeps u, slope, dy and noise live across its reductions: 16384 values spilled ~300
# bytes a thread, 8192 none (105 registers); above 8192 it loads the tile again (64 bytes of
# spill left for fp32 with every gradient, none for fp16). channels_last backward tiles spill
# at 16384 even reloading: 8192 (8 channels x 1024 px: 32 contiguous bytes fp32, a sector).
# Small planes share a program up to 4096 values (16 KB fp32) so each program moves enough
# bytes to amortise its start; split planes take sub-tiles of 4096 values and up to 64 chunks
# (32 planes of 1024x1024: 65536 programs, enough for 132 SMs). channels_last forward tiles
# keep at least 16 channels (64 contiguous bytes fp32) a pixel.
_CUDA = _Budget(
    tile_max=16384, backward_keep_max=8192, backward_cl_tile_max=8192, tile_target=4096,
    min_cl_channels=16, split_channels_nchw=1, split_channels_cl=64, sub_tile=4096,
    max_chunks=64, noise_tile=4096,
)  # fmt: skip
# CPU (interpreter): a program costs ~1.5 ms and every call of a @triton.jit helper (tl.sum
# included) inside it several more, so programs take all they can; the limits stay small
# enough that the test shapes with 4355- and 16384-pixel planes take the split plan (two
# chunks; a sub-tile loop at 16384), and backward tiles above 256 values take the reload.
_INTERPRETER = _Budget(
    tile_max=4096, backward_keep_max=256, backward_cl_tile_max=4096, tile_target=4096,
    min_cl_channels=16, split_channels_nchw=4, split_channels_cl=4, sub_tile=4096,
    max_chunks=2, noise_tile=4096,
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Plan:
    channels_last: bool
    one_pass: bool
    block_c: int  # tile rows: planes (NCHW) or channels of one sample (channels_last)
    block_hw: int  # one pass: the whole (padded) plane; split: the sub-tile
    chunk_hw: int  # split: pixels per chunk (a multiple of block_hw)
    chunks: int  # split: chunks per plane
    row_programs: int  # grid axis 0
    num_warps: int
    reload: bool  # one-pass backward: load the tile again for the second phase


def _warps(values: int) -> int:
    return max(1, min(16, values // 512))


def plan_for(x: torch.Tensor, channels_last: bool, backward: bool = False) -> Plan:
    """How a kernel walks ``x: [N, C, H, W]`` (non-empty, dense in the given layout)."""
    budget = _CUDA if x.is_cuda else _INTERPRETER
    # A float64 value takes two registers.
    per_value = 2 if x.is_cuda and x.dtype == torch.float64 else 1
    n, c, h, w = x.shape
    hw = h * w
    hw_block = triton.next_power_of_2(hw)
    rows_cap = triton.next_power_of_2(c if channels_last else n * c)
    tile_max = budget.tile_max
    min_rows = 1
    if channels_last:
        min_rows = min(rows_cap, budget.min_cl_channels)
        if backward:
            tile_max = budget.backward_cl_tile_max
            min_rows = min(rows_cap, max(1, budget.min_cl_channels // 2))
    tile_max //= per_value
    if hw_block * min_rows <= tile_max:
        block_c = min(rows_cap, max(min_rows, budget.tile_target // per_value // hw_block))
        reload = backward and block_c * hw_block > budget.backward_keep_max // per_value
        return Plan(
            channels_last, True, block_c, hw_block, hw, 1,
            _row_programs(n, c, block_c, channels_last), _warps(block_c * hw_block), reload,
        )  # fmt: skip
    block_c = min(
        rows_cap, budget.split_channels_cl if channels_last else budget.split_channels_nchw
    )
    sub_hw = min(hw_block, max(1, budget.sub_tile // block_c))
    subs_per_chunk = triton.cdiv(triton.cdiv(hw, sub_hw), budget.max_chunks)
    chunk_hw = subs_per_chunk * sub_hw
    return Plan(
        channels_last, False, block_c, sub_hw, chunk_hw, triton.cdiv(hw, chunk_hw),
        _row_programs(n, c, block_c, channels_last), _warps(block_c * sub_hw), False,
    )  # fmt: skip


def _row_programs(n: int, c: int, block_c: int, channels_last: bool) -> int:
    return n * triton.cdiv(c, block_c) if channels_last else triton.cdiv(n * c, block_c)


def _hi_lo(value: float) -> tuple[float, float]:
    """``value`` as two float32 numbers whose sum carries ~48 bits of it."""
    hi = ctypes.c_float(value).value
    lo = ctypes.c_float(value - hi).value if abs(hi) != float("inf") else 0.0
    return hi, lo


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
    slope_args = (*_hi_lo(slope_pos), *_hi_lo(slope_neg))
    common = (x, noise_arg, strength_arg, bias_arg)
    noise_stride = _noise_stride(noise, n, hw)
    if plan.one_pass:
        _forward_one_pass[(plan.row_programs,)](
            *common, scale, style_bias, y, mean, rstd, n, c, hw, noise_stride, *slope_args,
            *_hi_lo(eps), BLOCK_HW=plan.block_hw, **flags,
        )  # fmt: skip
        return y, mean, rstd
    acc_dtype = statistics_dtype(x.dtype)
    chunk_mean = torch.empty((n * c, plan.chunks), dtype=acc_dtype, device=x.device)
    chunk_m2 = torch.empty_like(chunk_mean)
    grid = (plan.row_programs, plan.chunks)
    _forward_chunk_statistics[grid](
        *common, chunk_mean, chunk_m2, n, c, hw, noise_stride, plan.chunk_hw, plan.chunks,
        *slope_args, SUB_HW=plan.block_hw, **flags,
    )  # fmt: skip
    block_p = _finalize_planes(x, n * c, plan.chunks)
    _forward_finalize[(triton.cdiv(n * c, block_p),)](
        chunk_mean, chunk_m2, mean, rstd, n * c, hw, plan.chunk_hw, plan.chunks, *_hi_lo(eps),
        ACC=flags["ACC"], BLOCK_P=block_p, BLOCK_K=triton.next_power_of_2(plan.chunks),
    )  # fmt: skip
    _forward_apply[grid](
        *common, scale, style_bias, mean, rstd, y, n, c, hw, noise_stride, plan.chunk_hw,
        *slope_args, SUB_HW=plan.block_hw, **flags,
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
    slope_args = (*_hi_lo(slope_pos), *_hi_lo(slope_neg))
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
        _backward_one_pass[(plan.row_programs,)](
            *common, dx_arg, dscale_arg, dstyle_bias_arg, coeffs, partials, n, c, hw, noise_stride,
            *slope_args, BLOCK_HW=plan.block_hw, STORE_DX=want_dx, STORE_DSCALE=want_dscale,
            STORE_DSTYLE_BIAS=want_dstyle_bias, STORE_COEFFS=want_dnoise, STORE_DBIAS=want_dbias,
            STORE_DSTRENGTH=want_dstrength, RELOAD=plan.reload, **flags,
        )  # fmt: skip
    else:
        grid = (plan.row_programs, plan.chunks)
        sums = torch.empty((4, n * c, plan.chunks), dtype=acc_dtype, device=device)
        _backward_chunk_sums[grid](
            *common, sums, n, c, hw, noise_stride, plan.chunk_hw, plan.chunks, *slope_args,
            SUB_HW=plan.block_hw, **flags,
        )  # fmt: skip
        block_p = _finalize_planes(x, n * c, plan.chunks)
        _backward_finalize[(triton.cdiv(n * c, block_p),)](
            sums, dscale_arg, dstyle_bias_arg, coeffs, n * c, hw, plan.chunks, ACC=flags["ACC"],
            BLOCK_P=block_p, BLOCK_K=triton.next_power_of_2(plan.chunks), STORE_DSCALE=want_dscale,
            STORE_DSTYLE_BIAS=want_dstyle_bias,
        )  # fmt: skip
        if want_dx or want_dbias or want_dstrength:
            _backward_apply[grid](
                *common, coeffs, dx_arg, partials, n, c, hw, noise_stride, plan.chunk_hw,
                plan.chunks, *slope_args, SUB_HW=plan.block_hw, STORE_DX=want_dx,
                STORE_DBIAS=want_dbias, STORE_DSTRENGTH=want_dstrength, **flags,
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
    _column_sums[(triton.cdiv(cols, block_cols), groups)](
        src, outs[0], outs[-1], rows, cols, BLOCK_R=block_rows, BLOCK_COLS=block_cols
    )


def _launch_noise_gradient(plan, common, coeffs, dnoise, n, c, hw, noise_stride, slope_args, flags):
    dy, x = common[:2]
    budget = _CUDA if x.is_cuda else _INTERPRETER
    c_block = triton.next_power_of_2(c)
    hw_block = triton.next_power_of_2(hw)
    if plan.channels_last:
        block_c = min(c_block, 64)
        block_hw = min(hw_block, max(1, budget.noise_tile // block_c))
    else:
        block_hw = min(hw_block, 512 if x.is_cuda else budget.noise_tile)
        block_c = min(c_block, max(1, budget.noise_tile // block_hw))
    # A noise plane per sample is written directly; one shared by the batch is summed over
    # the samples afterwards.
    per_sample = dnoise.shape[0] == n
    out = dnoise if per_sample else torch.empty((1, n, hw), dtype=coeffs.dtype, device=x.device)
    _noise_gradient[(triton.cdiv(hw, block_hw), n)](
        *common, coeffs, out, n, c, hw, noise_stride, *slope_args, ACC=flags["ACC"],
        BLOCK_C=block_c, BLOCK_HW=block_hw, CHANNELS_LAST=plan.channels_last,
        HAS_BIAS=flags["HAS_BIAS"], HAS_ACT=flags["HAS_ACT"], num_warps=_warps(block_c * block_hw),
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
