"""adain's registered ops (``ops/_registry.define_op``): ``adain_fwd`` / ``adain_bwd`` (``_C``'s
kernels) and their ``*_triton`` twins, with fake functions and autograd.

``*_fwd`` returns the per-plane ``mean`` and ``rstd`` beside ``y`` (non-differentiable, saved
for the backward); the backward of ``*_fwd`` is ``*_bwd``. The backward of ``*_bwd`` (second
order, and every order above it) differentiates the reference twice: instance norm has no
cheap exact formula in terms of its own kernels.
"""

from __future__ import annotations

import torch

from ... import _library
from .. import _registry
from .._common import statistics_dtype
from . import reference

# Returns (y, mean, rstd); mean and rstd are [N, C] in the statistics dtype (float32, float64
# for float64 x).
FWD_SCHEMA = "(Tensor x, Tensor scale, Tensor bias, float eps) -> (Tensor, Tensor, Tensor)"
# Returns (dx, dscale, dbias); an entry whose output_mask is False is an empty tensor.
BWD_SCHEMA = (
    "(Tensor dy, Tensor x, Tensor scale, Tensor mean, Tensor rstd, bool[3] output_mask) "
    "-> (Tensor, Tensor, Tensor)"
)


def _statistic(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty(x.shape[:2], dtype=statistics_dtype(x.dtype))


def _implied_eps(x: torch.Tensor, rstd: torch.Tensor) -> torch.Tensor:
    """The per-plane eps with ``rstd = rsqrt(var(x) + eps)``, ``[N, C, 1, 1]``.

    ``adain_bwd`` does not take eps; its saved ``rstd`` holds it. Every derivative of
    ``rsqrt(var + eps)`` depends on eps only through ``var + eps = rstd^-2``, so the reference
    evaluated with this constant differentiates exactly as with the forward's eps.
    """
    with torch.no_grad():
        _, var = reference.centered_and_variance(x)
        return rstd.reshape(var.shape).to(var.dtype).pow(-2) - var


def _fwd_fake(x, scale, bias, eps):
    return _library.empty_like_kernel(x), _statistic(x), _statistic(x)


def _fwd_setup(ctx, inputs, output):
    x, scale, _bias, _eps = inputs
    _y, mean, rstd = output
    ctx.mark_non_differentiable(mean, rstd)
    ctx.save_for_backward(x, scale, mean, rstd)


def _fwd_backward(kernels, ctx, mask, dy, _grad_mean, _grad_rstd):
    x, scale, mean, rstd = ctx.saved_tensors
    return kernels.bwd(dy, x, scale, mean, rstd, mask)


def _bwd_fake(dy, x, scale, mean, rstd, output_mask):
    compute_dx, compute_dscale, compute_dbias = output_mask
    dx = _library.empty_like_kernel(x) if compute_dx else x.new_empty([0])
    dscale = scale.new_empty(x.shape[:2]) if compute_dscale else scale.new_empty([0])
    dbias = scale.new_empty(x.shape[:2]) if compute_dbias else scale.new_empty([0])
    return dx, dscale, dbias


def _bwd_setup(ctx, inputs, output):
    dy, x, scale, _mean, rstd, output_mask = inputs
    ctx.save_for_backward(dy, x, scale, rstd)
    ctx.output_mask = tuple(output_mask)


def _bwd_backward(kernels, ctx, grad_dx, grad_dscale, grad_dbias):
    dy, x, scale, rstd = ctx.saved_tensors
    grads_of_grads = [
        g if computed else None
        for g, computed in zip((grad_dx, grad_dscale, grad_dbias), ctx.output_mask)
    ]
    eps = _implied_eps(x, rstd)

    def forward(x_, scale_, bias_):
        return reference.adain(x_, scale_, bias_, eps)

    # dx, dscale and dbias do not depend on bias: any value serves as its primal.
    grad_dy, grad_x, grad_scale, _ = _library.reference_backward_of_backward(
        forward, (x, scale, torch.zeros_like(scale)), (dy,), grads_of_grads
    )
    return grad_dy, grad_x, grad_scale, None, None, None


OP = _registry.define_op(
    "adain",
    fwd=_registry.Stage(FWD_SCHEMA, _fwd_fake, _fwd_setup, _fwd_backward),
    bwd=_registry.Stage(BWD_SCHEMA, _bwd_fake, _bwd_setup, _bwd_backward),
    gradients=_registry.Gradients(
        request=(_registry.Slot("x"), _registry.Slot("scale"), _registry.Slot("bias"))
    ),
)
