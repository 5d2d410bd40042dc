"""The plane-norm launchers: ``forward`` and ``backward`` allocate the outputs, pick the plan
(``plans.py``) and launch its kernels (``kernels.py``) for a :class:`Prologue`; and the input
checks the ops' own launchers (``ops/adain/triton.py``, ``ops/layer_epilogue/triton.py``)
share."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch
import triton

from ... import _library
from .. import _triton_launch as tl_launch
from .._common import statistics_dtype
from . import kernels, plans


class Prologue(NamedTuple):
    """The optional terms of the prologue (package docstring), ``v = x + noise_strength[c] *
    noise[n] + bias[c]`` and ``u = v * slope(v)``, as forward and backward take them. The
    default, every term absent, is the identity (adain's).

    ``noise: [N, 1, H, W]`` or ``[1, 1, H, W]`` and ``noise_strength: [C]`` are both given or
    both None; ``bias: [C]`` or None; ``slopes = (slope_pos, slope_neg)`` of the activation, or
    None for the identity. Already checked by the op's own launcher."""

    noise: torch.Tensor | None = None
    noise_strength: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    slopes: tuple[float, float] | None = None


IDENTITY = Prologue()


@dataclasses.dataclass(frozen=True)
class _KernelPrologue:
    """What every prologue kernel of one call takes: ``src``, the tensors of the prologue
    (x, noise, noise_strength, bias; an absent one stands in as x, never read: its flag is
    off), the slopes' float32 pairs, the noise plane's stride between samples, and the
    constexprs and warps of the plan."""

    src: tuple[torch.Tensor, ...]
    slope_args: tuple[float, ...]
    noise_stride: int
    flags: dict


def _kernel_prologue(x, prologue: Prologue, plan: plans.Plan) -> _KernelPrologue:
    n, _, h, w = x.shape
    noise, noise_strength, bias, slopes = prologue
    has_noise = noise_strength is not None
    noise = noise.contiguous() if has_noise else None
    src = (
        x,
        noise if has_noise else x,
        noise_strength.contiguous() if has_noise else x,
        bias.contiguous() if bias is not None else x,
    )
    slope_pos, slope_neg = slopes if slopes is not None else (1.0, 1.0)
    slope_args = (*tl_launch.float32_split(slope_pos), *tl_launch.float32_split(slope_neg))
    # One noise plane per sample, or one shared by the batch (stride 0).
    noise_stride = h * w if has_noise and noise.shape[0] == n and n != 1 else 0
    flags = dict(
        ACC=tl_launch.compute_dtype(x.dtype), BLOCK_C=plan.block_c,
        CHANNELS_LAST=plan.channels_last, HAS_NOISE=has_noise, HAS_BIAS=bias is not None,
        HAS_ACT=slopes is not None, num_warps=plan.num_warps,
    )  # fmt: skip
    return _KernelPrologue(src, slope_args, noise_stride, flags)


def forward(
    x: torch.Tensor,
    prologue: Prologue,
    scale: torch.Tensor,
    style_bias: torch.Tensor,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y, mean, rstd)`` of ``x: [N, C, H, W]`` after ``prologue``, styled by ``scale,
    style_bias: [N, C]``; ``mean, rstd: [N, C]`` in float32 (float64 for float64 x). Inputs
    are already checked by the op's own launcher."""
    fmt = _library.kernel_memory_format(x)
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
    plan = plans.plan_for(x, fmt == torch.channels_last)
    p = _kernel_prologue(x, prologue, plan)
    scale, style_bias = scale.contiguous(), style_bias.contiguous()
    eps_args = tl_launch.float32_split(eps)
    dims = (n, c, hw, p.noise_stride)
    if plan.one_pass:

        def args(programs):
            return (
                *p.src, scale, style_bias, y, mean, rstd, *dims, plan.row_programs, programs,
                *p.slope_args, *eps_args,
            )  # fmt: skip

        kwargs = dict(BLOCK_HW=plan.block_hw, SWEEP=plan.sweep, **p.flags)
        grid = plans.one_pass_grid(plan, x, kernels._forward_one_pass, 1, args(1), kwargs)
        tl_launch.launch(kernels._forward_one_pass, (grid,), x, *args(grid), **kwargs)
        return y, mean, rstd
    chunk_mean = torch.empty((n * c, plan.chunks), dtype=stats_dtype, device=x.device)
    chunk_m2 = torch.empty_like(chunk_mean)
    grid = (plan.row_programs, plan.chunks)
    tl_launch.launch(
        kernels._forward_chunk_statistics, grid, x, *p.src, chunk_mean, chunk_m2, *dims,
        plan.chunk_hw, plan.chunks, *p.slope_args, SUB_HW=plan.block_hw, **p.flags,
    )  # fmt: skip
    block_p = plans.finalize_planes(x, n * c, plan.chunks)
    tl_launch.launch(
        kernels._forward_finalize, (triton.cdiv(n * c, block_p),), x, chunk_mean, chunk_m2, mean,
        rstd, n * c, hw, plan.chunk_hw, plan.chunks, *eps_args, ACC=p.flags["ACC"],
        BLOCK_P=block_p, BLOCK_K=triton.next_power_of_2(plan.chunks),
    )  # fmt: skip
    tl_launch.launch(
        kernels._forward_apply, grid, x, *p.src, scale, style_bias, mean, rstd, y, *dims,
        plan.chunk_hw, *p.slope_args, SUB_HW=plan.block_hw, **p.flags,
    )  # fmt: skip
    return y, mean, rstd


def backward(
    dy: torch.Tensor,
    x: torch.Tensor,
    prologue: Prologue,
    scale: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    output_mask: tuple[bool, bool, bool, bool, bool, bool],
) -> tuple[torch.Tensor, ...]:
    """``(dx, dnoise, dnoise_strength, dbias, dscale, dstyle_bias)``; an entry whose
    ``output_mask`` is False is an empty tensor. dnoise and dnoise_strength need the prologue's
    noise, dbias its bias. Inputs are already checked by the op's own launcher."""
    want_dx, want_dnoise, want_dstrength, want_dbias, want_dscale, want_dstyle_bias = output_mask
    fmt = _library.kernel_memory_format(x)
    x = x.contiguous(memory_format=fmt)
    dy = dy.contiguous(memory_format=fmt)
    n, c, h, w = x.shape
    hw = h * w

    def output(wanted, shape, memory_format=torch.contiguous_format):
        return _library.new_output(shape, x, memory_format) if wanted else x.new_empty([0])

    dx = output(want_dx, x.shape, fmt)
    dnoise = output(want_dnoise, prologue.noise.shape if want_dnoise else ())
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

    plan = plans.plan_for(x, fmt == torch.channels_last, backward=True)
    p = _kernel_prologue(x, prologue, plan)
    acc_dtype = statistics_dtype(x.dtype)
    device = x.device
    # dy, the prologue's tensors and the per-plane stats: what every backward kernel reads.
    common = (dy, *p.src, scale.contiguous(), mean.contiguous(), rstd.contiguous())
    dims = (n, c, hw, p.noise_stride)
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
    stores = dict(STORE_DX=want_dx, STORE_DBIAS=want_dbias, STORE_DSTRENGTH=want_dstrength)
    if plan.one_pass:

        def args(programs):
            return (
                *common, dx_arg, dscale_arg, dstyle_bias_arg, coeffs, partials, *dims,
                plan.row_programs, programs, *p.slope_args,
            )  # fmt: skip

        kwargs = dict(
            BLOCK_HW=plan.block_hw, STORE_DSCALE=want_dscale, STORE_DSTYLE_BIAS=want_dstyle_bias,
            STORE_COEFFS=want_dnoise, SWEEP=plan.sweep, **stores, **p.flags,
        )  # fmt: skip
        grid = plans.one_pass_grid(plan, x, kernels._backward_one_pass, 2, args(1), kwargs)
        tl_launch.launch(kernels._backward_one_pass, (grid,), x, *args(grid), **kwargs)
    else:
        grid = (plan.row_programs, plan.chunks)
        sums = torch.empty((4, n * c, plan.chunks), dtype=acc_dtype, device=device)
        tl_launch.launch(
            kernels._backward_chunk_sums, grid, x, *common, sums, *dims, plan.chunk_hw,
            plan.chunks, *p.slope_args, SUB_HW=plan.block_hw, **p.flags,
        )  # fmt: skip
        block_p = plans.finalize_planes(x, n * c, plan.chunks)
        tl_launch.launch(
            kernels._backward_finalize, (triton.cdiv(n * c, block_p),), x, sums, dscale_arg,
            dstyle_bias_arg, coeffs, n * c, hw, plan.chunks, ACC=p.flags["ACC"], BLOCK_P=block_p,
            BLOCK_K=triton.next_power_of_2(plan.chunks), STORE_DSCALE=want_dscale,
            STORE_DSTYLE_BIAS=want_dstyle_bias,
        )  # fmt: skip
        if want_dx or want_dbias or want_dstrength:
            tl_launch.launch(
                kernels._backward_apply, grid, x, *common, coeffs, dx_arg, partials, *dims,
                plan.chunk_hw, plan.chunks, *p.slope_args, SUB_HW=plan.block_hw, **stores,
                **p.flags,
            )  # fmt: skip
    if groups:
        _launch_column_sums(partials, groups)
    if want_dnoise:
        _launch_noise_gradient(plan, x, common, coeffs, dnoise, dims, p)
    return grads


def _launch_column_sums(src: torch.Tensor, outs: list[torch.Tensor]) -> None:
    """``outs[g][:] = src[g].sum(0)`` in a fixed order, cast to each output's dtype."""
    groups, rows, cols = src.shape
    block_rows, block_cols = plans.column_sum_blocks(src)
    tl_launch.launch(
        kernels._column_sums, (triton.cdiv(cols, block_cols), groups), src, src, outs[0],
        outs[-1], rows, cols, BLOCK_R=block_rows, BLOCK_COLS=block_cols,
    )  # fmt: skip


def _launch_noise_gradient(plan, x, common, coeffs, dnoise, dims, p: _KernelPrologue) -> None:
    n, _, hw, _ = dims
    block_c, block_hw = plans.noise_gradient_blocks(plan, x)
    # A noise plane per sample is written directly; one shared by the batch is summed over
    # the samples afterwards.
    per_sample = dnoise.shape[0] == n
    out = dnoise if per_sample else torch.empty((1, n, hw), dtype=coeffs.dtype, device=x.device)
    flags = p.flags
    tl_launch.launch(
        kernels._noise_gradient, (triton.cdiv(hw, block_hw), n), x, *common, coeffs, out, *dims,
        *p.slope_args, ACC=flags["ACC"], BLOCK_C=block_c, BLOCK_HW=block_hw,
        CHANNELS_LAST=plan.channels_last, HAS_BIAS=flags["HAS_BIAS"], HAS_ACT=flags["HAS_ACT"],
        num_warps=plans.warps_for(block_c * block_hw),
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
        if not tl_launch.INTERPRETING:
            raise RuntimeError(
                f"{label}: CPU tensors need TRITON_INTERPRET=1 set before triton is imported"
            )
    if x.dtype not in DTYPE_NAMES:
        raise RuntimeError(
            f"{label}: x must be float16, bfloat16, float32 or float64, got {x.dtype}"
        )
