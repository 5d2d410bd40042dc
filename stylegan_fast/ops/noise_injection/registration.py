"""noise_injection's registered ops: schemas, fake functions and autograd, once per kernel
backend.

``noise_injection_fwd`` carries the ``_C`` kernels (CPU key: cpp, CUDA key: cuda) and
``noise_injection_fwd_triton`` the Triton ones; each has a ``*_bwd`` partner that computes
both reductions (dnoise over channels, dstrength over batch and pixels) in one pass over dy.
dx is dy itself, so no kernel serves it. ``*_bwd`` is bilinear in (dy, noise, strength): its
own backward is two more ``*_bwd`` calls plus two broadcast products, all differentiable, so
every order is available and the reductions stay kernels at every order.
"""

from __future__ import annotations

import dataclasses

import torch

from ... import _library

FWD_SCHEMA = "(Tensor x, Tensor noise, Tensor strength) -> Tensor"
# Returns (dnoise, dstrength): dnoise shaped like noise (summed over the batch too when noise
# is [1, 1, H, W]), dstrength [C]; each is empty ([0]) when not requested.
BWD_SCHEMA = (
    "(Tensor dy, Tensor noise, Tensor strength, bool compute_dnoise, bool compute_dstrength) "
    "-> (Tensor, Tensor)"
)


@dataclasses.dataclass(frozen=True)
class Kernels:
    fwd: object
    bwd: object


def _register(suffix: str) -> Kernels:
    fwd = _library.define(f"noise_injection_fwd{suffix}", FWD_SCHEMA)
    bwd = _library.define(f"noise_injection_bwd{suffix}", BWD_SCHEMA)

    @torch.library.register_fake(fwd)
    def _fwd_fake(x, noise, strength):
        return _library.empty_like_kernel(x)

    @torch.library.register_fake(bwd)
    def _bwd_fake(dy, noise, strength, compute_dnoise, compute_dstrength):
        dnoise = noise.new_empty(noise.shape if compute_dnoise else [0])
        dstrength = strength.new_empty([dy.shape[1]] if compute_dstrength else [0])
        return dnoise, dstrength

    def fwd_setup(ctx, inputs, output):
        x, noise, strength = inputs
        ctx.save_for_backward(noise, strength)

    def fwd_backward(ctx, dy):
        noise, strength = ctx.saved_tensors
        _, compute_dnoise, compute_dstrength = ctx.needs_input_grad
        dnoise = dstrength = None
        if compute_dnoise or compute_dstrength:
            dnoise, dstrength = bwd(dy, noise, strength, compute_dnoise, compute_dstrength)
        return (
            dy,
            dnoise if compute_dnoise else None,
            dstrength if compute_dstrength else None,
        )

    def bwd_setup(ctx, inputs, output):
        dy, noise, strength, compute_dnoise, compute_dstrength = inputs
        ctx.save_for_backward(dy, noise, strength)
        ctx.computed = (compute_dnoise, compute_dstrength)

    def bwd_backward(ctx, grad_dnoise, grad_dstrength):
        dy, noise, strength = ctx.saved_tensors
        if not ctx.computed[0]:
            grad_dnoise = None
        if not ctx.computed[1]:
            grad_dstrength = None
        need_dy, need_noise, need_strength = ctx.needs_input_grad[:3]
        channel = (1, -1, 1, 1)
        # dnoise = sum_c dy * strength and dstrength = sum_nhw dy * noise, so dy receives both
        # incoming gradients spread back over the axes they were summed over.
        grad_dy = None
        if need_dy:
            terms = []
            if grad_dnoise is not None:
                terms.append(strength.reshape(channel) * grad_dnoise)
            if grad_dstrength is not None:
                terms.append(grad_dstrength.reshape(channel) * noise)
            if terms:
                grad_dy = terms[0] if len(terms) == 1 else terms[0] + terms[1]
                grad_dy = grad_dy.expand(dy.shape)
        # Each of noise and strength meets dy in exactly one of the two reductions, and its
        # gradient is that reduction again with the incoming gradient in the other factor.
        grad_noise = None
        if need_noise and grad_dstrength is not None:
            grad_noise, _ = bwd(dy, noise, grad_dstrength, True, False)
        grad_strength = None
        if need_strength and grad_dnoise is not None:
            _, grad_strength = bwd(dy, grad_dnoise, strength, False, True)
        return grad_dy, grad_noise, grad_strength, None, None

    _library.register_autograd(fwd, fwd_backward, setup_context=fwd_setup)
    torch.library.register_autograd(bwd, bwd_backward, setup_context=bwd_setup)
    return Kernels(fwd=fwd, bwd=bwd)


EXTENSION = _register("")
TRITON = _register("_triton")

# The Triton launchers (ops/noise_injection/triton.py) serve the *_triton schemas on CUDA
# tensors, and on CPU tensors under TRITON_INTERPRET=1. That module, and triton with it, is
# imported on the first call: the package imports without triton, and TRITON_INTERPRET (read
# when triton compiles the kernels' decorators) may be set any time before.
_triton_launchers = None


def _launchers():
    global _triton_launchers
    if _triton_launchers is None:
        from . import triton as launchers

        _triton_launchers = launchers
    return _triton_launchers


@torch.library.register_kernel(TRITON.fwd, ("cpu", "cuda"))
def _triton_fwd(x, noise, strength):
    return _launchers().noise_injection_fwd(x, noise, strength)


@torch.library.register_kernel(TRITON.bwd, ("cpu", "cuda"))
def _triton_bwd(dy, noise, strength, compute_dnoise, compute_dstrength):
    return _launchers().noise_injection_bwd(dy, noise, strength, compute_dnoise, compute_dstrength)
