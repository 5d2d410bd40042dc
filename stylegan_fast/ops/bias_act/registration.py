"""bias_act's registered ops (``ops/_registry.define_op``): ``bias_act_fwd`` / ``bias_act_bwd``
(``_C``'s kernels) and their ``*_triton`` twins, with fake functions and autograd.

The backward of ``*_fwd`` is ``*_bwd``; the backward of ``*_bwd`` is ``*_bwd`` again for
piecewise-linear activations (dx is linear in dy and the activation's second derivative
vanishes), which is the path R1 takes through a discriminator. Smooth activations
differentiate the reference for that term, so every order is available.
"""

from __future__ import annotations

import torch

from ... import _library
from .. import _registry
from . import reference

FWD_SCHEMA = (
    "(Tensor x, Tensor? b, int dim, str act, float alpha, float gain, float? clamp) -> Tensor"
)
# Returns (dx, db); db is [C] when compute_db, else empty.
BWD_SCHEMA = (
    "(Tensor dy, Tensor x, Tensor? b, int dim, str act, float alpha, float gain, float? clamp, "
    "bool compute_db) -> (Tensor, Tensor)"
)


def _bias_shape(x: torch.Tensor, dim: int) -> list[int]:
    return [-1 if i == dim else 1 for i in range(x.ndim)]


def _fwd_fake(x, b, dim, act, alpha, gain, clamp):
    return _library.empty_like_kernel(x)


def _fwd_setup(ctx, inputs, output):
    x, b, *params = inputs
    ctx.save_for_backward(x, b)
    ctx.params = reference.Params(*params)


def _fwd_backward(kernels, ctx, mask, dy):
    x, b = ctx.saved_tensors
    return kernels.bwd(dy, x, b, *ctx.params, *mask)


def _bwd_fake(dy, x, b, dim, act, alpha, gain, clamp, compute_db):
    dx = _library.empty_like_kernel(x)
    db = x.new_empty([x.shape[dim]] if compute_db else [0])
    return dx, db


def _bwd_setup(ctx, inputs, output):
    dy, x, b, *params, compute_db = inputs
    # R1 differentiates dx only: without this, autograd would hand _bwd_backward a
    # materialised zero grad_db and spread it over a full-size tensor (one extra add kernel per
    # bias_act layer of D, counted under the interpreter; csrc/autograd.cpp's C++ node already
    # passes None).
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(dy, x, b)
    ctx.params = reference.Params(*params)
    ctx.compute_db = compute_db


def _bwd_backward(kernels, ctx, grad_dx, grad_db):
    dy, x, b = ctx.saved_tensors
    params = ctx.params
    if not ctx.compute_db:
        grad_db = None
    none_tail = (None,) * 6  # dim, act, alpha, gain, clamp, compute_db
    if not reference.ACTIVATIONS[params.act].piecewise_linear:

        def forward(x_, b_):
            return reference.bias_act(x_, b_, params)

        grad_dy, grad_x, grad_b = _library.reference_backward_of_backward(
            forward, (x, b), (dy,), (grad_dx, grad_db)
        )
        return grad_dy, grad_x, grad_b, *none_tail
    # db = sum(dx) over the non-channel dims, so its incoming gradient spreads over dx.
    grad = grad_dx
    if grad_db is not None:
        spread = grad_db.reshape(_bias_shape(x, params.dim)).expand_as(x)
        grad = spread if grad is None else grad + spread
    if grad is None:
        return None, None, None, *none_tail
    grad_dy, _ = kernels.bwd(grad, x, b, *params, False)
    return grad_dy, None, None, *none_tail


OP = _registry.define_op(
    "bias_act",
    fwd=_registry.Stage(FWD_SCHEMA, _fwd_fake, _fwd_setup, _fwd_backward),
    bwd=_registry.Stage(BWD_SCHEMA, _bwd_fake, _bwd_setup, _bwd_backward),
    # compute_db asks for db; dx comes from the same pass whether asked for or not.
    gradients=_registry.Gradients(request=(_registry.Slot("b"),), always=("x",)),
)
