"""layer_epilogue's registered ops (``ops/_registry.define_op``): ``layer_epilogue_fwd`` /
``layer_epilogue_bwd`` (``_C``'s kernels) and their ``*_triton`` twins, with fake functions
and autograd.

The forward also returns the per-plane statistics ``mean`` and ``rstd = rsqrt(var + eps)`` of
``u`` (float32, float64 for float64 ``x``; not differentiable), so that the backward recomputes
``u`` from ``x`` instead of saving it. The backward of ``*_fwd`` is ``*_bwd``; the backward of
``*_bwd`` (second order, and every order above) differentiates the reference twice.
"""

from __future__ import annotations

import torch

from ... import _library
from .. import _registry
from .._common import statistics_dtype
from . import reference

FWD_SCHEMA = (
    "(Tensor x, Tensor? noise, Tensor? noise_strength, Tensor? bias, Tensor scale, "
    "Tensor style_bias, float alpha, float gain, float eps) -> (Tensor, Tensor, Tensor)"
)
# Returns (dx, dnoise, dnoise_strength, dbias, dscale, dstyle_bias); an entry whose
# output_mask is False is an empty tensor.
BWD_SCHEMA = (
    "(Tensor dy, Tensor x, Tensor? noise, Tensor? noise_strength, Tensor? bias, Tensor scale, "
    "Tensor mean, Tensor rstd, float alpha, float gain, bool[6] output_mask) "
    "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)"
)


def _fwd_fake(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps):
    stats = x.new_empty(x.shape[:2], dtype=statistics_dtype(x.dtype))
    return _library.empty_like_kernel(x), stats, torch.empty_like(stats)


def _fwd_setup(ctx, inputs, output):
    x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps = inputs
    _, mean, rstd = output
    ctx.mark_non_differentiable(mean, rstd)
    ctx.save_for_backward(x, noise, noise_strength, bias, scale, mean, rstd)
    ctx.params = (alpha, gain)


def _fwd_backward(kernels, ctx, mask, dy, _dmean, _drstd):
    x, noise, noise_strength, bias, scale, mean, rstd = ctx.saved_tensors
    return kernels.bwd(dy, x, noise, noise_strength, bias, scale, mean, rstd, *ctx.params, mask)


def _bwd_fake(dy, x, noise, noise_strength, bias, scale, mean, rstd, alpha, gain, mask):
    channels = x.shape[1]
    shapes = (
        x.shape,
        noise.shape if noise is not None else None,
        [channels],
        [channels],
        scale.shape,
        scale.shape,
    )
    grads = []
    for i, (wanted, shape) in enumerate(zip(mask, shapes)):
        if not wanted:
            grads.append(x.new_empty([0]))
        elif i == 0:
            grads.append(_library.empty_like_kernel(x))
        else:
            grads.append(x.new_empty(shape))
    return tuple(grads)


def _bwd_setup(ctx, inputs, output):
    dy, x, noise, noise_strength, bias, scale, mean, rstd, alpha, gain, mask = inputs
    ctx.save_for_backward(dy, x, noise, noise_strength, bias, scale, rstd)
    ctx.params = (alpha, gain)
    ctx.mask = tuple(mask)


def _bwd_backward(kernels, ctx, *grads_of_grads):
    dy, x, noise, noise_strength, bias, scale, rstd = ctx.saved_tensors
    alpha, gain = ctx.params
    grads_of_grads = [g if wanted else None for g, wanted in zip(grads_of_grads, ctx.mask)]
    # The schema carries rstd, not eps: recover var + eps per plane from the saved rstd
    # so the reference reproduces the forward's normalisation exactly.
    with torch.no_grad():
        u = reference.activation(x, reference.Activation(noise, noise_strength, bias, alpha, gain))
        var = u.var(dim=(2, 3), unbiased=False)
        eps_per_plane = rstd.to(u.dtype).reciprocal().square() - var
    # style_bias is not an input of *_bwd (dstyle_bias = sum_hw dy needs no value of it),
    # but the reference needs one to take dstyle_bias' gradient with respect to dy; y is
    # affine in style_bias, so any value serves.
    style_bias = torch.zeros_like(scale)

    def forward(x_, noise_, noise_strength_, bias_, scale_, style_bias_):
        act = reference.Activation(noise_, noise_strength_, bias_, alpha, gain)
        return reference.layer_epilogue(x_, act, scale_, style_bias_, eps_per_plane)

    grad_dy, *grad_primals, _ = _library.reference_backward_of_backward(
        forward,
        (x, noise, noise_strength, bias, scale, style_bias),
        (dy,),
        grads_of_grads,
    )
    # mean, rstd (not differentiable), alpha, gain, output_mask
    return grad_dy, *grad_primals, None, None, None, None, None


OP = _registry.define_op(
    "layer_epilogue",
    fwd=_registry.Stage(FWD_SCHEMA, _fwd_fake, _fwd_setup, _fwd_backward),
    bwd=_registry.Stage(BWD_SCHEMA, _bwd_fake, _bwd_setup, _bwd_backward),
    # output_mask, one entry per gradient; the noise term needs both of its tensors.
    gradients=_registry.Gradients(
        request=(
            _registry.Slot("x"),
            _registry.Slot("noise", needs=("noise_strength",)),
            _registry.Slot("noise_strength"),
            _registry.Slot("bias"),
            _registry.Slot("scale"),
            _registry.Slot("style_bias"),
        )
    ),
)
