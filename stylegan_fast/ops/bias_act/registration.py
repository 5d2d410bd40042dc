"""bias_act's registered ops: schemas, fake functions and autograd, once per kernel backend.

``bias_act_fwd`` carries the ``_C`` kernels (CPU key: cpp, CUDA key: cuda) and
``bias_act_fwd_triton`` the Triton ones; each has a ``*_bwd`` partner. The backward of
``*_fwd`` is ``*_bwd``; the backward of ``*_bwd`` is ``*_bwd`` again for piecewise-linear
activations (dx is linear in dy and the activation's second derivative vanishes), which is the
path R1 takes through a discriminator. Smooth activations differentiate the reference for that
term, so every order is available.
"""

from __future__ import annotations

import dataclasses

import torch

from ... import _library
from . import reference

FWD_SCHEMA = (
    "(Tensor x, Tensor? b, int dim, str act, float alpha, float gain, float? clamp) -> Tensor"
)
# Returns (dx, db); db is [C] when compute_db, else empty.
BWD_SCHEMA = (
    "(Tensor dy, Tensor x, Tensor? b, int dim, str act, float alpha, float gain, float? clamp, "
    "bool compute_db) -> (Tensor, Tensor)"
)


@dataclasses.dataclass(frozen=True)
class Kernels:
    fwd: object
    bwd: object


def _bias_shape(x: torch.Tensor, dim: int) -> list[int]:
    return [-1 if i == dim else 1 for i in range(x.ndim)]


def _register(suffix: str) -> Kernels:
    fwd = _library.define(f"bias_act_fwd{suffix}", FWD_SCHEMA)
    bwd = _library.define(f"bias_act_bwd{suffix}", BWD_SCHEMA)

    @torch.library.register_fake(fwd)
    def _fwd_fake(x, b, dim, act, alpha, gain, clamp):
        return _library.empty_like_kernel(x)

    @torch.library.register_fake(bwd)
    def _bwd_fake(dy, x, b, dim, act, alpha, gain, clamp, compute_db):
        dx = _library.empty_like_kernel(x)
        db = x.new_empty([x.shape[dim]] if compute_db else [0])
        return dx, db

    def fwd_setup(ctx, inputs, output):
        x, b, *params = inputs
        ctx.save_for_backward(x, b)
        ctx.params = tuple(params)  # dim, act, alpha, gain, clamp

    def fwd_backward(ctx, dy):
        x, b = ctx.saved_tensors
        compute_db = b is not None and ctx.needs_input_grad[1]
        dx, db = bwd(dy, x, b, *ctx.params, compute_db)
        return dx, (db if compute_db else None), None, None, None, None, None

    def bwd_setup(ctx, inputs, output):
        dy, x, b, *params, compute_db = inputs
        # R1 differentiates dx only: without this, autograd would hand bwd_backward a
        # materialised zero grad_db and spread it over a full-size tensor (one extra add
        # kernel per bias_act layer of D, counted under the interpreter; csrc/autograd.cpp's
        # C++ node already passes None).
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(dy, x, b)
        ctx.params = tuple(params)
        ctx.compute_db = compute_db

    def bwd_backward(ctx, grad_dx, grad_db):
        dy, x, b = ctx.saved_tensors
        dim, act, alpha, gain, clamp = ctx.params
        if not ctx.compute_db:
            grad_db = None
        none_tail = (None,) * 6  # dim, act, alpha, gain, clamp, compute_db
        if not reference.ACTIVATIONS[act].piecewise_linear:

            def forward(x_, b_):
                return reference.bias_act(x_, b_, dim, act, alpha, gain, clamp)

            grad_dy, grad_x, grad_b = _library.reference_backward_of_backward(
                forward, (x, b), (dy,), (grad_dx, grad_db)
            )
            return grad_dy, grad_x, grad_b, *none_tail
        # db = sum(dx) over the non-channel dims, so its incoming gradient spreads over dx.
        grad = grad_dx
        if grad_db is not None:
            spread = grad_db.reshape(_bias_shape(x, dim)).expand_as(x)
            grad = spread if grad is None else grad + spread
        if grad is None:
            return None, None, None, *none_tail
        grad_dy, _ = bwd(grad, x, b, dim, act, alpha, gain, clamp, False)
        return grad_dy, None, None, *none_tail

    _library.register_autograd(fwd, fwd_backward, setup_context=fwd_setup)
    torch.library.register_autograd(bwd, bwd_backward, setup_context=bwd_setup)
    return Kernels(fwd=fwd, bwd=bwd)


EXTENSION = _register("")
TRITON = _register("_triton")

# The Triton launchers (ops/bias_act/triton.py) serve the *_triton schemas on CUDA tensors, and
# on CPU tensors under TRITON_INTERPRET=1. That module, and triton with it, is imported on the
# first call: the package imports without triton, and TRITON_INTERPRET (read when triton
# compiles the kernels' decorators) may be set any time before.
_triton_launchers = None


def _launchers():
    global _triton_launchers
    if _triton_launchers is None:
        from . import triton as launchers

        _triton_launchers = launchers
    return _triton_launchers


@torch.library.register_kernel(TRITON.fwd, ("cpu", "cuda"))
def _triton_fwd(x, b, dim, act, alpha, gain, clamp):
    return _launchers().bias_act_fwd(x, b, dim, act, alpha, gain, clamp)


@torch.library.register_kernel(TRITON.bwd, ("cpu", "cuda"))
def _triton_bwd(dy, x, b, dim, act, alpha, gain, clamp, compute_db):
    return _launchers().bias_act_bwd(dy, x, b, dim, act, alpha, gain, clamp, compute_db)
