"""The plane-norm Triton kernels (see the package docstring for the math, plans and traffic).

Inside a kernel the arguments travel to the shared helpers as bundles (tuples, which Triton
3.6 and 3.9 both pass through ``@triton.jit`` calls and inline away: the compiled code is
that of the flat arguments):

- ``src = (x_ptr, noise_ptr, strength_ptr, bias_ptr)``: the prologue's inputs;
- ``dims = (C, HW, noise_stride)``;
- ``rows = (n, sample, c, plane, valid)``: a row block's planes (:func:`_rows`);
- ``slopes = (slope_pos, slope_neg)``: the activation's, joined from their float32 pairs;
- ``stats = (mean, rstd, scale)``: per-plane ``[BLOCK_C]`` vectors the backward needs.

Kernels themselves take flat arguments (a kernel's tuple arguments would change how
``.ci/compile_triton.py`` and ``tests/ops/test_triton_launch.py`` record launches); their
signatures list them in those groups.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .._triton_launch import join_float32

# ---------------------------------------------------------------------------------------------
# Helpers


@triton.jit
def _rows(block, N, C, BLOCK_C: tl.constexpr, CHANNELS_LAST: tl.constexpr):
    """The planes row block ``block`` holds, ``(n, sample, c, plane = n*C + c, valid)``: [BLOCK_C]
    vectors, and the sample (channels_last; 0 for NCHW). NCHW: consecutive planes (contiguous
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
    return n, sample, c, plane, valid


@triton.jit
def _split_program(N, C, HW, chunk_hw, BLOCK_C: tl.constexpr, CHANNELS_LAST: tl.constexpr):
    """A split-plan program's work: its row block's planes (grid axis 0, :func:`_rows`), its
    chunk (axis 1) and the chunk's pixels ``[start, end)``."""
    rows = _rows(tl.program_id(0), N, C, BLOCK_C, CHANNELS_LAST)
    chunk = tl.program_id(1)
    start = chunk * chunk_hw
    return rows, chunk, start, tl.minimum(start + chunk_hw, HW)


@triton.jit
def _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC: tl.constexpr):
    slope_pos = join_float32(slope_pos_hi, slope_pos_lo, ACC)
    return slope_pos, join_float32(slope_neg_hi, slope_neg_lo, ACC)


@triton.jit
def _load_stats(mean_ptr, rstd_ptr, scale_ptr, plane, valid, ACC: tl.constexpr):
    """``(mean, rstd, scale)`` of the planes, [BLOCK_C] each."""
    mean = tl.load(mean_ptr + plane, mask=valid, other=0.0)
    rstd = tl.load(rstd_ptr + plane, mask=valid, other=0.0)
    scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
    return mean, rstd, scale


@triton.jit
def _activation_tile(
    src,
    rows,
    hw,
    dims,
    slopes,
    ACC: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):
    """A [BLOCK_C, BLOCK_HW] tile of the prologue at pixels ``hw``: (offsets, mask, u, slope,
    noise). Masked entries of u are NOT zero (the prologue of x = 0): callers mask before
    reducing. noise is [1, BLOCK_HW] for channels_last (one noise row serves every channel of
    the sample: loaded once per pixel, in the layout the tile broadcasts it to)."""
    x_ptr, noise_ptr, strength_ptr, bias_ptr = src
    n, sample, c, plane, valid = rows
    C, HW, noise_stride = dims
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
        slope_pos, slope_neg = slopes
        slope = tl.where(v > 0, slope_pos, slope_neg)
        u = v * slope
    return offs, mask, u, slope, noise


@triton.jit
def _moments(
    src,
    rows,
    dims,
    start,
    end,
    slopes,
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
            src, rows, hw, dims, slopes, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT
        )
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
    src,
    y_ptr,
    rows,
    dims,
    start,
    end,
    mean,
    a,
    b,
    slopes,
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
            src, rows, hw, dims, slopes, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT
        )
        y = (u - mean[:, None]) * a[:, None] + b[:, None]
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _input_gradient(dy, u, slope, stats, mean_g, mean_g_u_hat, HAS_ACT: tl.constexpr):
    """dt of a tile from its per-plane coefficients ([BLOCK_C] vectors)."""
    mean, rstd, scale = stats
    u_hat = (u - mean[:, None]) * rstd[:, None]
    g = dy * scale[:, None]
    dt = rstd[:, None] * (g - mean_g[:, None] - u_hat * mean_g_u_hat[:, None])
    if HAS_ACT:
        dt = dt * slope
    return dt


@triton.jit
def _tile_sums(dy, u, mask, stats):
    """The four plane sums of a tile: dy, dy * u_hat, g and g * u_hat (g = dy * scale)."""
    mean, rstd, scale = stats
    u_hat = tl.where(mask, (u - mean[:, None]) * rstd[:, None], 0.0)
    # Masked: 0 * an infinite scale would put NaN into the sums.
    g = tl.where(mask, dy * scale[:, None], 0.0)
    sum_dy = tl.sum(dy, axis=1)
    sum_dy_u_hat = tl.sum(dy * u_hat, axis=1)
    sum_g = tl.sum(g, axis=1)
    return sum_dy, sum_dy_u_hat, sum_g, tl.sum(g * u_hat, axis=1)


@triton.jit
def _gradient_sums(
    dy_ptr,
    src,
    rows,
    dims,
    start,
    end,
    stats,
    slopes,
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
        hw = start + i * SUB_HW + tl.arange(0, SUB_HW)
        offs, mask, u, _slope, _noise = _activation_tile(
            src, rows, hw, dims, slopes, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT
        )
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        sub_dy, sub_dy_u_hat, sub_g, sub_g_u_hat = _tile_sums(dy, u, mask, stats)
        sum_dy += sub_dy
        sum_dy_u_hat += sub_dy_u_hat
        sum_g += sub_g
        sum_g_u_hat += sub_g_u_hat
    return sum_dy, sum_dy_u_hat, sum_g, sum_g_u_hat


@triton.jit
def _write_input_gradient(
    dy_ptr,
    src,
    dx_ptr,
    rows,
    dims,
    start,
    end,
    stats,
    mean_g,
    mean_g_u_hat,
    slopes,
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
        hw = start + i * SUB_HW + tl.arange(0, SUB_HW)
        offs, mask, u, slope, noise = _activation_tile(
            src, rows, hw, dims, slopes, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT
        )
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        dt = _input_gradient(dy, u, slope, stats, mean_g, mean_g_u_hat, HAS_ACT)
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


# ---------------------------------------------------------------------------------------------
# Forward


# row_blocks and programs (the grid) bound and stride the persistent loop of a sweep plan; the
# grid follows the compiled kernel's occupancy, so neither is specialised on (the kernel compiled
# to measure it is the one launched). (programs, not tl.num_programs(0): Triton 3.6's
# interpreter cannot range over the latter.)
@triton.jit(do_not_specialize=["row_blocks", "programs"])
def _forward_one_pass(
    x_ptr, noise_ptr, strength_ptr, bias_ptr,  # src
    scale_ptr, style_bias_ptr, y_ptr, mean_ptr, rstd_ptr,
    N, C, HW, noise_stride,  # dims
    row_blocks, programs,
    slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, eps_hi, eps_lo,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr, SWEEP: tl.constexpr,
):  # fmt: skip
    # Whole planes per program, row blocks pid, pid + programs, ... Without SWEEP the tile
    # holds the planes (BLOCK_HW >= HW): read x once, write y once (the 2X minimum). With SWEEP
    # the planes are swept in BLOCK_HW sub-tiles twice, statistics then output: x is loaded
    # twice, the second time from L2 (see the package docstring).
    src = (x_ptr, noise_ptr, strength_ptr, bias_ptr)
    dims = (C, HW, noise_stride)
    slopes = _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC)
    for block in range(tl.program_id(0), row_blocks, programs):
        rows = _rows(block, N, C, BLOCK_C, CHANNELS_LAST)
        _n, _sample, _c, plane, valid = rows
        scale = tl.load(scale_ptr + plane, mask=valid, other=0.0).to(ACC)
        b = tl.load(style_bias_ptr + plane, mask=valid, other=0.0).to(ACC)
        if SWEEP:
            mean, m2 = _moments(
                src, rows, dims, 0, HW, slopes, ACC, BLOCK_C, BLOCK_HW, CHANNELS_LAST,
                HAS_NOISE, HAS_BIAS, HAS_ACT,
            )  # fmt: skip
            rstd = 1.0 / tl.sqrt(m2 / HW + join_float32(eps_hi, eps_lo, ACC))
            _write_output(
                src, y_ptr, rows, dims, 0, HW, mean, rstd * scale, b, slopes, ACC, BLOCK_HW,
                CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
            )  # fmt: skip
        else:
            hw = tl.arange(0, BLOCK_HW)
            offs, mask, u, _slope, _noise = _activation_tile(
                src, rows, hw, dims, slopes, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT
            )
            mean = tl.sum(tl.where(mask, u, 0.0), axis=1) / HW
            centered = tl.where(mask, u - mean[:, None], 0.0)
            var = tl.sum(centered * centered, axis=1) / HW
            rstd = 1.0 / tl.sqrt(var + join_float32(eps_hi, eps_lo, ACC))
            y = centered * (rstd * scale)[:, None] + b[:, None]
            tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)
        tl.store(mean_ptr + plane, mean, mask=valid)
        tl.store(rstd_ptr + plane, rstd, mask=valid)


@triton.jit
def _forward_chunk_statistics(
    x_ptr, noise_ptr, strength_ptr, bias_ptr,  # src
    chunk_mean_ptr, chunk_m2_ptr,
    N, C, HW, noise_stride,  # dims
    chunk_hw, chunks,
    slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):  # fmt: skip
    # Split pass 1: the mean and sum of squared deviations of one chunk of chunk_hw pixels.
    slopes = _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC)
    rows, chunk, start, end = _split_program(N, C, HW, chunk_hw, BLOCK_C, CHANNELS_LAST)
    _n, _sample, _c, plane, valid = rows
    mean, m2 = _moments(
        (x_ptr, noise_ptr, strength_ptr, bias_ptr), rows, (C, HW, noise_stride), start, end,
        slopes, ACC, BLOCK_C, SUB_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
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
    rstd = 1.0 / tl.sqrt(m2 / HW + join_float32(eps_hi, eps_lo, ACC))
    tl.store(mean_ptr + plane, mean, mask=plane < P)
    tl.store(rstd_ptr + plane, rstd, mask=plane < P)


@triton.jit
def _forward_apply(
    x_ptr, noise_ptr, strength_ptr, bias_ptr,  # src
    scale_ptr, style_bias_ptr, mean_ptr, rstd_ptr, y_ptr,
    N, C, HW, noise_stride,  # dims
    chunk_hw,
    slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):  # fmt: skip
    # Split pass 2: re-read x, write y.
    slopes = _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC)
    rows, _chunk, start, end = _split_program(N, C, HW, chunk_hw, BLOCK_C, CHANNELS_LAST)
    _n, _sample, _c, plane, valid = rows
    mean, rstd, scale = _load_stats(mean_ptr, rstd_ptr, scale_ptr, plane, valid, ACC)
    b = tl.load(style_bias_ptr + plane, mask=valid, other=0.0).to(ACC)
    _write_output(
        (x_ptr, noise_ptr, strength_ptr, bias_ptr), y_ptr, rows, (C, HW, noise_stride), start,
        end, mean, rstd * scale, b, slopes, ACC, SUB_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS,
        HAS_ACT,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Backward


# row_blocks and programs: the persistent loop of a sweep plan (see _forward_one_pass).
@triton.jit(do_not_specialize=["row_blocks", "programs"])
def _backward_one_pass(
    dy_ptr,
    x_ptr, noise_ptr, strength_ptr, bias_ptr,  # src
    scale_ptr, mean_ptr, rstd_ptr,  # stats
    dx_ptr, dscale_ptr, dstyle_bias_ptr, coeff_ptr, partials_ptr,
    N, C, HW, noise_stride,  # dims
    row_blocks, programs,
    slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
    STORE_DX: tl.constexpr, STORE_DSCALE: tl.constexpr, STORE_DSTYLE_BIAS: tl.constexpr,
    STORE_COEFFS: tl.constexpr, STORE_DBIAS: tl.constexpr, STORE_DSTRENGTH: tl.constexpr,
    SWEEP: tl.constexpr,
):  # fmt: skip
    # Whole planes per program (row blocks pid, pid + programs, ...); the plane sums never
    # leave the program. Without SWEEP the tile holds the planes: x and dy read once, dx
    # written once (the 3X minimum). With SWEEP the planes are swept in BLOCK_HW sub-tiles
    # twice, sums then dx: x and dy are loaded twice, the second time from L2.
    src = (x_ptr, noise_ptr, strength_ptr, bias_ptr)
    dims = (C, HW, noise_stride)
    slopes = _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC)
    for block in range(tl.program_id(0), row_blocks, programs):
        rows = _rows(block, N, C, BLOCK_C, CHANNELS_LAST)
        n, _sample, c, plane, valid = rows
        stats = _load_stats(mean_ptr, rstd_ptr, scale_ptr, plane, valid, ACC)
        if SWEEP:
            sum_dy, sum_dy_u_hat, sum_g, sum_g_u_hat = _gradient_sums(
                dy_ptr, src, rows, dims, 0, HW, stats, slopes, ACC, BLOCK_C, BLOCK_HW,
                CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
            )  # fmt: skip
        else:
            hw = tl.arange(0, BLOCK_HW)
            offs, mask, u, slope, noise = _activation_tile(
                src, rows, hw, dims, slopes, ACC, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT
            )
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
            sum_dy, sum_dy_u_hat, sum_g, sum_g_u_hat = _tile_sums(dy, u, mask, stats)
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
                    dy_ptr, src, dx_ptr, rows, dims, 0, HW, stats, mean_g, mean_g_u_hat, slopes,
                    ACC, BLOCK_C, BLOCK_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
                    STORE_DX, STORE_DBIAS, STORE_DSTRENGTH,
                )  # fmt: skip
            else:
                dt = _input_gradient(dy, u, slope, stats, mean_g, mean_g_u_hat, HAS_ACT)
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
    x_ptr, noise_ptr, strength_ptr, bias_ptr,  # src
    scale_ptr, mean_ptr, rstd_ptr,  # stats
    sums_ptr,
    N, C, HW, noise_stride,  # dims
    chunk_hw, chunks,
    slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
):  # fmt: skip
    # Split pass 1: per chunk, sum dy, dy * u_hat, g and g * u_hat into sums[4, P, chunks].
    slopes = _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC)
    rows, chunk, start, end = _split_program(N, C, HW, chunk_hw, BLOCK_C, CHANNELS_LAST)
    _n, _sample, _c, plane, valid = rows
    stats = _load_stats(mean_ptr, rstd_ptr, scale_ptr, plane, valid, ACC)
    sum_dy, sum_dy_u_hat, sum_g, sum_g_u_hat = _gradient_sums(
        dy_ptr, (x_ptr, noise_ptr, strength_ptr, bias_ptr), rows, (C, HW, noise_stride), start,
        end, stats, slopes, ACC, BLOCK_C, SUB_HW, CHANNELS_LAST, HAS_NOISE, HAS_BIAS, HAS_ACT,
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
    x_ptr, noise_ptr, strength_ptr, bias_ptr,  # src
    scale_ptr, mean_ptr, rstd_ptr,  # stats
    coeff_ptr, dx_ptr, partials_ptr,
    N, C, HW, noise_stride,  # dims
    chunk_hw, chunks,
    slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, SUB_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr,
    HAS_ACT: tl.constexpr,
    STORE_DX: tl.constexpr, STORE_DBIAS: tl.constexpr, STORE_DSTRENGTH: tl.constexpr,
):  # fmt: skip
    # Split pass 2: re-read x and dy, write dx and the chunk's parameter partials.
    slopes = _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC)
    rows, chunk, start, end = _split_program(N, C, HW, chunk_hw, BLOCK_C, CHANNELS_LAST)
    n, _sample, c, plane, valid = rows
    stats = _load_stats(mean_ptr, rstd_ptr, scale_ptr, plane, valid, ACC)
    mean_g = tl.load(coeff_ptr + plane, mask=valid, other=0.0)
    mean_g_u_hat = tl.load(coeff_ptr + N * C + plane, mask=valid, other=0.0)
    sum_dt, sum_dt_noise = _write_input_gradient(
        dy_ptr, (x_ptr, noise_ptr, strength_ptr, bias_ptr), dx_ptr, rows, (C, HW, noise_stride),
        start, end, stats, mean_g, mean_g_u_hat, slopes, ACC, BLOCK_C, SUB_HW, CHANNELS_LAST,
        HAS_NOISE, HAS_BIAS, HAS_ACT, STORE_DX, STORE_DBIAS, STORE_DSTRENGTH,
    )  # fmt: skip
    _store_partials(
        partials_ptr, sum_dt, sum_dt_noise, n * chunks + chunk, N * chunks, c, valid, C,
        STORE_DBIAS, STORE_DSTRENGTH,
    )  # fmt: skip


@triton.jit
def _noise_gradient(
    dy_ptr,
    x_ptr, noise_ptr, strength_ptr, bias_ptr,  # src
    scale_ptr, mean_ptr, rstd_ptr,  # stats
    coeff_ptr, out_ptr,
    N, C, HW, noise_stride,  # dims
    slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo,
    ACC: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_ACT: tl.constexpr,
):  # fmt: skip
    # out[n, hw] = sum_c dt[n, c, hw] * noise_strength[c], channels summed in order within the
    # program: re-reads x and dy (2X) instead of a cross-plane reduction in the main kernels.
    # Pixel blocks on grid axis 0 (up to 2^31 - 1 programs; axis 1 stops at 65535).
    src = (x_ptr, noise_ptr, strength_ptr, bias_ptr)
    dims = (C, HW, noise_stride)
    slopes = _slopes(slope_pos_hi, slope_pos_lo, slope_neg_hi, slope_neg_lo, ACC)
    sample = tl.program_id(1)
    hw = tl.program_id(0) * BLOCK_HW + tl.arange(0, BLOCK_HW)
    n = tl.zeros([BLOCK_C], tl.int64) + sample
    total = tl.zeros([BLOCK_HW], ACC)
    for c0 in range(0, C, BLOCK_C):
        c = (c0 + tl.arange(0, BLOCK_C)).to(tl.int64)
        valid = c < C
        plane = n * C + c
        rows = (n, sample, c, plane, valid)
        offs, mask, u, slope, _noise = _activation_tile(
            src, rows, hw, dims, slopes, ACC, CHANNELS_LAST, True, HAS_BIAS, HAS_ACT
        )
        stats = _load_stats(mean_ptr, rstd_ptr, scale_ptr, plane, valid, ACC)
        mean_g = tl.load(coeff_ptr + plane, mask=valid, other=0.0)
        mean_g_u_hat = tl.load(coeff_ptr + N * C + plane, mask=valid, other=0.0)
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
        dt = _input_gradient(dy, u, slope, stats, mean_g, mean_g_u_hat, HAS_ACT)
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
