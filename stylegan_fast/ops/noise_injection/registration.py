"""noise_injection's registered ops (``ops/_registry.define_op``): ``noise_injection_fwd`` /
``noise_injection_bwd`` (``_C``'s kernels) and their ``*_triton`` twins, with fake functions
and autograd.

``*_bwd`` computes both reductions (dnoise over channels, dstrength over batch and pixels) in
one pass over dy. dx is dy itself, so no kernel serves it. ``*_bwd`` is bilinear in (dy, noise,
strength): its own backward is two more ``*_bwd`` calls plus two broadcast products, all
differentiable, so every order is available and the reductions stay kernels at every order.
"""

from __future__ import annotations

from ... import _library
from .. import _registry

FWD_SCHEMA = "(Tensor x, Tensor noise, Tensor strength) -> Tensor"
# Returns (dnoise, dstrength): dnoise shaped like noise (summed over the batch too when noise
# is [1, 1, H, W]), dstrength [C]; each is empty ([0]) when not requested.
BWD_SCHEMA = (
    "(Tensor dy, Tensor noise, Tensor strength, bool compute_dnoise, bool compute_dstrength) "
    "-> (Tensor, Tensor)"
)


def _fwd_fake(x, noise, strength):
    return _library.empty_like_kernel(x)


def _fwd_setup(ctx, inputs, output):
    x, noise, strength = inputs
    ctx.save_for_backward(noise, strength)


def _fwd_backward(kernels, ctx, mask, dy):
    noise, strength = ctx.saved_tensors
    return None, *kernels.bwd(dy, noise, strength, *mask)  # dx = dy: Gradients.passthrough


def _bwd_fake(dy, noise, strength, compute_dnoise, compute_dstrength):
    dnoise = noise.new_empty(noise.shape if compute_dnoise else [0])
    dstrength = strength.new_empty([dy.shape[1]] if compute_dstrength else [0])
    return dnoise, dstrength


def _bwd_setup(ctx, inputs, output):
    dy, noise, strength, compute_dnoise, compute_dstrength = inputs
    ctx.save_for_backward(dy, noise, strength)
    ctx.computed = (compute_dnoise, compute_dstrength)


def _bwd_backward(kernels, ctx, grad_dnoise, grad_dstrength):
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
        grad_noise, _ = kernels.bwd(dy, noise, grad_dstrength, True, False)
    grad_strength = None
    if need_strength and grad_dnoise is not None:
        _, grad_strength = kernels.bwd(dy, grad_dnoise, strength, False, True)
    return grad_dy, grad_noise, grad_strength, None, None


OP = _registry.define_op(
    "noise_injection",
    fwd=_registry.Stage(FWD_SCHEMA, _fwd_fake, _fwd_setup, _fwd_backward),
    bwd=_registry.Stage(BWD_SCHEMA, _bwd_fake, _bwd_setup, _bwd_backward),
    gradients=_registry.Gradients(
        request=(_registry.Slot("noise"), _registry.Slot("strength")), passthrough=("x",)
    ),
)
