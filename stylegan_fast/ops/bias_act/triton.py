"""The Triton kernel of bias_act and its launchers (``bias_act_fwd_triton``, ``*_bwd_triton``).

    y  = clamp(act(x + b) * gain, -clamp, clamp)
    dx = act'(x + b) * gain * [act(x + b) * gain within the clamp] * dy
    db = sum of dx over every axis but ``dim``

The backward kernel is also the double backward of the piecewise-linear activations (R1 through
a discriminator: registration.py calls it again with the incoming gradient as ``dy``); the
smooth activations' higher orders differentiate the reference. Every activation the op offers
is built from ``tl.exp``/``tl.log`` and arithmetic only (Triton 3.6's core ops; ``tl.tanh``
and friends are not core there), with the branch structure of the CPU kernels
(csrc/bias_act.cpp) so NaN and Inf propagate as in the eager reference.

Layout: the kernel walks the dense buffer of ``kernel_memory_format(x)`` as a 2-D view
``[rows, cols]`` in which the bias channel is either the column (the channel is the fastest
axis: channels_last with ``dim=1``, or ``dim`` last) or ``row % channels`` (NCHW: a row is
one plane ``H*W``). Either way the channel index costs one op per row or column of a tile,
never an integer division per element, and the column axis is contiguous, so loads and
stores are full-width vector accesses when the row length is a multiple of 16 bytes.

Bytes (the minimum, up to the bias and the small fp32 partials):
    forward   read x, write y                        (2 x numel x itemsize)
    backward  read dy and x, write dx, write db      (3 x numel x itemsize), one tile pass;
              db goes through fp32 partials, one row per program along the summed axis
              ([groups, C], or [groups, rows] when the channel is per row; as many programs in
              all as one wave of the compiled kernel, _triton_partials.reduction_target) and
              one more launch that adds them, skipped when the partials are already db (one
              channel-in-columns group, or one group of a single sample).
Compute runs in fp32 (fp64 for fp64 inputs) and every output is rounded once. alpha, gain and
clamp are runtime arguments (float32 hi/lo pairs): a new value compiles nothing.

Imports triton at module level; ``ops/_registry.py`` imports this module on the first Triton call.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ... import _library
from .. import _triton_launch as tl_launch
from .. import _triton_partials as tp
from .._common import statistics_dtype

# The activation's code is a constexpr: each activation compiles to its own straight-line code.
ACT_CODES = {
    name: code
    for code, name in enumerate(
        ("linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish")
    )
}
_LINEAR = tl.constexpr(0)
_RELU = tl.constexpr(1)
_LRELU = tl.constexpr(2)
_TANH = tl.constexpr(3)
_SIGMOID = tl.constexpr(4)
_ELU = tl.constexpr(5)
_SELU = tl.constexpr(6)
_SOFTPLUS = tl.constexpr(7)
_SWISH = tl.constexpr(8)

# torch.nn.functional.selu's constants (the same as csrc/bias_act.cpp).
_SELU_SCALE = tl.constexpr(1.0507009873554804934193349852946)
_SELU_SCALE_ALPHA = tl.constexpr(
    1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
)
# torch.nn.functional.softplus' default threshold (beta = 1): above it softplus(v) = v.
_SOFTPLUS_THRESHOLD = tl.constexpr(20.0)


# ---------------------------------------------------------------------------------------------
# The kernel
#
# One kernel serves forward and backward, its math inline but for _piecewise_linear (the
# branches that the piecewise-linear activations' value and gradient share): under
# TRITON_INTERPRET=1 every call of a nested @triton.jit function re-patches triton.language
# (~8 ms each when this kernel was written, ~0.7 ms measured with Triton 3.9), which made helper
# functions cost more than the kernels themselves in the CPU test suite. Nested calls stay a few
# a program: the shared join of the float scalars (three a launch, 0.1-0.3 ms each measured,
# Triton 3.9 and 3.6) and _piecewise_linear (one a tile forward, two backward; the interpreter's
# tiles cover a test tensor in one or a few, and tests/ops/test_bias_act.py took no longer).


@triton.jit
def _piecewise_linear(v, u, alpha, ACT: tl.constexpr):
    """``u`` scaled by the slope at ``v`` of the piecewise-linear activation ``ACT`` (linear,
    relu or lrelu): the activation for ``u = v``, its gradient for ``u = dy``. torch's branches
    (relu selects 0 rather than multiplying by it), so NaN and Inf propagate as in torch."""
    if ACT == _LINEAR:
        out = u
    elif ACT == _RELU:
        out = tl.where(v <= 0.0, 0.0, u)
    else:
        out = tl.where(v > 0.0, u, u * alpha)
    return out


# groups and tiles_per_program follow the grid, which follows the compiled kernel's occupancy:
# not specialised on, so the kernel compiled to measure it is the one launched.
@triton.jit(do_not_specialize=["groups", "tiles_per_program"])
def _bias_act_kernel(
    x_ptr,
    b_ptr,
    dy_ptr,
    out_ptr,
    db_ptr,
    rows,
    cols,
    channels,
    groups,
    tiles_per_program,
    alpha_hi,
    alpha_lo,
    gain_hi,
    gain_lo,
    clamp_hi,
    clamp_lo,
    BACKWARD: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    CHANNEL_IN_COLS: tl.constexpr,
    COMPUTE_DB: tl.constexpr,
    ACT: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
    COMPUTE: tl.constexpr,
    INDEX_64: tl.constexpr,
    BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    # The view is [rows, cols], the bias channel the column or `row % channels`. Program
    # (kept block, group): the kept block is a block of columns when the channel is the
    # column, else a block of rows; the group is a run of `tiles_per_program` consecutive tiles
    # along the other axis, the one db sums over. Forward: out = y. Backward: out = dx, and
    # with COMPUTE_DB the program's dx sums (compute dtype, tile by tile, then one tree) go to
    # one row of db_ptr: fp32/fp64 partials [groups, C] or [groups, rows], or db itself when
    # one row covers everything. Bytes: x (and dy) read once, out written once.
    # alpha, gain and clamp arrive as float32 (hi, lo) pairs (_triton_launch.float32_split):
    # runtime values, so a new value compiles nothing; their sum is exact enough for float64.
    alpha = tl_launch.join_float32(alpha_hi, alpha_lo, COMPUTE)
    gain = tl_launch.join_float32(gain_hi, gain_lo, COMPUTE)
    clamp = tl_launch.join_float32(clamp_hi, clamp_lo, COMPUTE)
    pid = tl.program_id(0)
    if INDEX_64:
        pid = pid.to(tl.int64)
    kept = pid // groups
    first = (pid % groups) * tiles_per_program
    if CHANNEL_IN_COLS:
        c_kept = kept * BLOCK_C + tl.arange(0, BLOCK_C)
        bias = tl.zeros([1, BLOCK_C], COMPUTE)
        if HAS_BIAS:
            bias += tl.load(b_ptr + c_kept, mask=c_kept < cols, other=0.0).to(COMPUTE)[None, :]
        last = tl.minimum(first + tiles_per_program, tl.cdiv(rows, BLOCK_R))
    else:
        r_kept = kept * BLOCK_R + tl.arange(0, BLOCK_R)
        bias = tl.zeros([BLOCK_R, 1], COMPUTE)
        if HAS_BIAS:
            b_offsets = r_kept % channels
            bias += tl.load(b_ptr + b_offsets, mask=r_kept < rows, other=0.0).to(COMPUTE)[:, None]
        last = tl.minimum(first + tiles_per_program, tl.cdiv(cols, BLOCK_C))
    acc = tl.zeros([BLOCK_R, BLOCK_C], COMPUTE)
    for tile in range(first, last):
        if CHANNEL_IN_COLS:
            r = tile * BLOCK_R + tl.arange(0, BLOCK_R)
            c = c_kept
        else:
            r = r_kept
            c = tile * BLOCK_C + tl.arange(0, BLOCK_C)
        mask = (r < rows)[:, None] & (c < cols)[None, :]
        offsets = r[:, None] * cols + c[None, :]
        v = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(COMPUTE) + bias

        # a = act(v). Comparisons with NaN are false: every branch is placed so that NaN
        # propagates as in torch. Constants go through tl.full in the compute dtype: depending
        # on the Triton version a Python float met in arithmetic may be rounded to fp32 first,
        # which would cost fp64 its precision (0.2 is not an fp32 number). gain multiplies
        # even when it is 1 (exact: x * 1 == x for every x, NaN and Inf included), so gain
        # stays a runtime value; one multiply per element is free in a memory-bound kernel.
        if ACT == _TANH or ACT == _ELU or ACT == _SELU:
            # expm1(z) for z <= 0 to full relative precision (Kahan): u - 1 is exact near
            # u = 1 and (u - 1) / log(u) cancels the rounding of u. u == 1: |z| is below half
            # an ulp (expm1(z) = z); u - 1 == -1: exp underflowed (z = -inf included). tanh
            # takes it at z = -2|v|, so nothing overflows and +-Inf give +-1.
            if ACT == _TANH:
                z = -2.0 * tl.abs(v)
            else:
                z = tl.where(v > 0.0, 0.0, v)  # only v <= 0 is used; NaN stays NaN
            u = tl.exp(z)
            um1 = u - 1.0
            # (The where keeps log and / off the lanes they cannot serve: those are replaced
            # below, and the interpreter would warn about 0/0.)
            log_u = tl.log(tl.where((u == 1.0) | (u == 0.0), 0.5, u))
            expm1 = tl.where(u == 1.0, z, um1 * (z / log_u))
            expm1 = tl.where(um1 == -1.0, um1, expm1)
        if ACT == _SIGMOID or ACT == _SWISH:
            # sigmoid(v) and 1 - sigmoid(v), each to full relative precision, from
            # e = exp(-|v|) <= 1: no overflow, and 1 - sigmoid is never a cancellation.
            e = tl.exp(-tl.abs(v))
            d = 1.0 / (1.0 + e)
            sig = tl.where(v >= 0.0, d, e * d)
            one_minus_sig = tl.where(v >= 0.0, e * d, d)
        if ACT == _LINEAR or ACT == _RELU or ACT == _LRELU:
            a = _piecewise_linear(v, v, alpha, ACT)
        elif ACT == _TANH:
            t = -expm1 / (2.0 + expm1)
            a = tl.where(v < 0.0, -t, t)
        elif ACT == _SIGMOID:
            a = sig
        elif ACT == _ELU:
            a = tl.where(v <= 0.0, alpha * expm1, v)
        elif ACT == _SELU:
            neg = tl.full(v.shape, _SELU_SCALE_ALPHA, COMPUTE) * expm1
            a = tl.where(v <= 0.0, neg, tl.full(v.shape, _SELU_SCALE, COMPUTE) * v)
        elif ACT == _SOFTPLUS:
            # log1p(exp(v)) to full relative precision (Kahan): w - 1 is the exp(v) that
            # 1 + exp(v) actually rounded to, and log(w) * u / (w - 1) corrects for it.
            # (v is capped where it is not used, so exp cannot overflow; NaN stays NaN, which
            # tl.minimum would not guarantee on a GPU.)
            u = tl.exp(tl.where(v > _SOFTPLUS_THRESHOLD, _SOFTPLUS_THRESHOLD, v))
            w = 1.0 + u
            log1p = tl.where(w == 1.0, u, tl.log(w) * (u / tl.where(w == 1.0, 1.0, w - 1.0)))
            a = tl.where(v > _SOFTPLUS_THRESHOLD, v, log1p)
        else:  # swish
            a = v * sig

        if BACKWARD:
            g = tl.load(dy_ptr + offsets, mask=mask, other=0.0).to(COMPUTE)
            if HAS_CLAMP:
                # torch.clamp passes the gradient where -clamp <= y <= clamp (false for NaN).
                y = a * gain
                g = tl.where((y >= -clamp) & (y <= clamp), g, 0.0)
            g = g * gain
            # The gradient with respect to v: torch's backward formulas and branches.
            if ACT == _LINEAR or ACT == _RELU or ACT == _LRELU:
                out = _piecewise_linear(v, g, alpha, ACT)
            elif ACT == _TANH:
                out = g * (1.0 - a * a)
            elif ACT == _SIGMOID:
                out = g * one_minus_sig * sig
            elif ACT == _ELU:
                # NaN takes the exponential branch (a NaN gradient), as torch's vectorised
                # kernel does; exp(v) at v > 0 is never selected, hence min(v, 0).
                scale = alpha * tl.exp(tl.where(v > 0.0, 0.0, v))
                out = tl.where(v > 0.0, g, g * scale)
            elif ACT == _SELU:
                scale_neg = tl.full(v.shape, _SELU_SCALE_ALPHA, COMPUTE)
                scale_neg = scale_neg * tl.exp(tl.where(v > 0.0, 0.0, v))
                out = tl.where(v > 0.0, g * tl.full(v.shape, _SELU_SCALE, COMPUTE), g * scale_neg)
            elif ACT == _SOFTPLUS:
                out = tl.where(v > _SOFTPLUS_THRESHOLD, g, g * (u / (u + 1.0)))
            else:  # swish
                out = g * sig * (1.0 + v * one_minus_sig)
            if COMPUTE_DB:
                acc += tl.where(mask, out, 0.0)
        else:
            out = a * gain
            if HAS_CLAMP:
                # NaN passes through, as in torch.clamp.
                out = tl.where(out < -clamp, -clamp, tl.where(out > clamp, clamp, out))
        tl.store(out_ptr + offsets, out.to(out_ptr.dtype.element_ty), mask=mask)

    if COMPUTE_DB:
        group = pid % groups
        if CHANNEL_IN_COLS:
            total = tl.sum(acc, axis=0).to(db_ptr.dtype.element_ty)
            tl.store(db_ptr + group * cols + c_kept, total, mask=c_kept < cols)
        else:
            total = tl.sum(acc, axis=1).to(db_ptr.dtype.element_ty)
            tl.store(db_ptr + group * rows + r_kept, total, mask=r_kept < rows)


# ---------------------------------------------------------------------------------------------
# Launchers


def _check(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str) -> None:
    if not x.is_cuda and not x.is_cpu:
        raise RuntimeError(f"bias_act (triton): x must be a CUDA or CPU tensor, got {x.device}")
    if act not in ACT_CODES:
        raise RuntimeError(f"bias_act (triton): unknown activation {act!r}")
    if b is not None:
        if not 0 <= dim < x.dim():
            raise RuntimeError(f"bias_act (triton): dim must be in [0, {x.dim()}), got {dim}")
        if b.dim() != 1 or b.shape[0] != x.shape[dim]:
            raise RuntimeError(
                f"bias_act (triton): b must have shape [x.shape[{dim}]] = [{x.shape[dim]}], "
                f"got {list(b.shape)}"
            )
        if b.dtype != x.dtype or b.device != x.device:
            raise RuntimeError("bias_act (triton): b must match x in dtype and device")


def _view(xc: torch.Tensor, b: torch.Tensor | None, dim: int) -> tuple[int, int, int, bool]:
    """``(rows, cols, channels, channel_in_cols)`` of the dense buffer ``xc``.

    With a bias of C > 1 channels, ``xc.stride(dim)`` is the number of consecutive elements
    sharing a channel (dense layouts only): 1 puts the channel in the columns (``[numel / C,
    C]``), else a row is one such run (``[numel / stride, stride]``, channel ``row % C``).
    """
    numel = xc.numel()
    channels = xc.shape[dim] if b is not None else 1
    if channels == 1:
        return 1, numel, 1, False
    inner = xc.stride(dim)
    if inner == 1:
        return numel // channels, channels, channels, True
    return numel // inner, inner, channels, False


def _launch(
    x: torch.Tensor,
    b: torch.Tensor | None,
    dy: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float | None,
    compute_db: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Runs the kernel forward (``dy`` None: returns ``(y, None)``) or backward (returns
    ``(dx, db)``, ``db`` None unless ``compute_db``); ``x.numel() > 0``."""
    fmt = _library.kernel_memory_format(x)
    xc = x.contiguous(memory_format=fmt)
    dyc = dy.contiguous(memory_format=fmt) if dy is not None else None
    out = _library.new_output(x.shape, x, fmt)
    rows, cols, channels, channel_in_cols = _view(xc, b, dim)
    config = tp.launch_config(x)
    block_c = min(tp.next_power_of_2(cols), config.max_cols)
    block_r = min(tp.next_power_of_2(rows), max(1, config.tile // block_c))
    row_blocks, col_blocks = triton.cdiv(rows, block_r), triton.cdiv(cols, block_c)
    kept_blocks, summed_tiles = (
        (col_blocks, row_blocks) if channel_in_cols else (row_blocks, col_blocks)
    )
    acc_dtype = statistics_dtype(x.dtype)
    scalars = (
        *tl_launch.float32_split(alpha),
        *tl_launch.float32_split(gain),
        *tl_launch.float32_split(0.0 if clamp is None else clamp),
    )
    flags = dict(
        BACKWARD=dy is not None,
        HAS_BIAS=b is not None,
        CHANNEL_IN_COLS=channel_in_cols,
        COMPUTE_DB=compute_db,
        ACT=ACT_CODES[act],
        HAS_CLAMP=clamp is not None,
        COMPUTE=tl_launch.compute_dtype(x.dtype),
        # Partials hold fewer elements than x (at most one per tile row or column summed).
        INDEX_64=tp.needs_int64_index(x.numel()),
        BLOCK_R=block_r,
        BLOCK_C=block_c,
        num_warps=config.num_warps,
    )
    # Pointers that are never read stand in for None.
    inputs = (xc, b if b is not None else xc, dyc if dyc is not None else xc, out)
    sizes = (rows, cols, channels)
    if compute_db:
        # db's sums split along the summed axis until the grid is one wave of the compiled
        # kernel (its partials buffer stands in as a placeholder of the same dtype).
        target = tp.reduction_target(
            config, _bias_act_kernel, x, *inputs, x.new_empty([0], dtype=acc_dtype), *sizes,
            1, 1, *scalars, **flags,
        )  # fmt: skip
        tiles_per_program, groups = tp.split_reduction(kept_blocks, summed_tiles, target)
    else:
        tiles_per_program, groups = 1, summed_tiles  # nothing to sum: one tile per program
    # Partials: [groups, C] (channel in cols) or [groups, outer * C] (channel per row); a
    # single row of C sums is db itself.
    kept_len = cols if channel_in_cols else rows
    db = partials = None
    if compute_db and groups * kept_len == channels:
        db = partials = _library.new_output([channels], x)
    elif compute_db:
        partials = _library.new_output([groups, kept_len], x, dtype=acc_dtype)
    tl_launch.launch(
        _bias_act_kernel, (kept_blocks * groups,), x,
        *inputs, partials if partials is not None else out, *sizes, groups, tiles_per_program,
        *scalars, **flags,
    )  # fmt: skip
    if compute_db and db is None:
        db = tp.sum_partials(partials.view(-1, channels), x.dtype)
    return out, db


def forward(
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float | None,
) -> torch.Tensor:
    """``bias_act_fwd_triton``: ``y = clamp(act(x + b) * gain)``, ``y`` shaped like ``x`` in
    ``kernel_memory_format(x)``. ``x: [..., C (at dim), ...]``, ``b: [C]`` or None."""
    _check(x, b, dim, act)
    if x.numel() == 0:
        return _library.new_output(x.shape, x, _library.kernel_memory_format(x))
    return _launch(x, b, None, dim, act, alpha, gain, clamp, False)[0]


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float | None,
    compute_db: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``bias_act_bwd_triton``: ``(dx, db)`` for an incoming ``dy`` shaped like ``x``; ``dx``
    in ``kernel_memory_format(x)``, ``db: [C]`` (``[0]`` unless ``compute_db``)."""
    _check(x, b, dim, act)
    if dy.shape != x.shape or dy.dtype != x.dtype or dy.device != x.device:
        raise RuntimeError("bias_act (triton): dy must match x in shape, dtype and device")
    if compute_db and b is None:
        raise RuntimeError("bias_act (triton): compute_db needs b")
    if x.numel() == 0:  # db sums over nothing
        dx = _library.new_output(x.shape, x, _library.kernel_memory_format(x))
        return dx, x.new_zeros([x.shape[dim]]) if compute_db else x.new_empty([0])
    dx, db = _launch(x, b, dy, dim, act, alpha, gain, clamp, compute_db)
    return dx, db if compute_db else x.new_empty([0])
