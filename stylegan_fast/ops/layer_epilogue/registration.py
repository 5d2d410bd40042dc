"""layer_epilogue's registered ops: schemas, fake functions and autograd, once per backend.

``layer_epilogue_fwd`` carries the ``_C`` kernels (CPU key: cpp, CUDA key: cuda) and
``layer_epilogue_fwd_triton`` the Triton ones; each has a ``*_bwd`` partner. The forward also
returns the per-plane statistics ``mean`` and ``rstd = rsqrt(var + eps)`` of ``u`` (float32,
float64 for float64 ``x``; not differentiable), so that the backward recomputes ``u`` from
``x`` instead of saving it. The backward of ``*_fwd`` is ``*_bwd``; the backward of ``*_bwd``
(second order, and every order above) differentiates the reference twice.
"""

from __future__ import annotations

import dataclasses

import torch

from ... import _library
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


@dataclasses.dataclass(frozen=True)
class Kernels:
    fwd: object
    bwd: object


def statistics_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of ``mean`` and ``rstd``: float64 for float64 ``x``, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _register(suffix: str) -> Kernels:
    fwd = _library.define(f"layer_epilogue_fwd{suffix}", FWD_SCHEMA)
    bwd = _library.define(f"layer_epilogue_bwd{suffix}", BWD_SCHEMA)

    @torch.library.register_fake(fwd)
    def _fwd_fake(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps):
        stats = x.new_empty(x.shape[:2], dtype=statistics_dtype(x.dtype))
        return _library.empty_like_kernel(x), stats, torch.empty_like(stats)

    @torch.library.register_fake(bwd)
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

    def fwd_setup(ctx, inputs, output):
        x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps = inputs
        _, mean, rstd = output
        ctx.mark_non_differentiable(mean, rstd)
        ctx.save_for_backward(x, noise, noise_strength, bias, scale, mean, rstd)
        ctx.params = (alpha, gain)

    def fwd_backward(ctx, dy, _dmean, _drstd):
        x, noise, noise_strength, bias, scale, mean, rstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        has_noise = noise_strength is not None
        mask = [
            needs[0],
            has_noise and needs[1],
            has_noise and needs[2],
            bias is not None and needs[3],
            needs[4],
            needs[5],
        ]
        grads = bwd(dy, x, noise, noise_strength, bias, scale, mean, rstd, *ctx.params, mask)
        grads = [g if wanted else None for g, wanted in zip(grads, mask)]
        return (*grads, None, None, None)  # alpha, gain, eps

    def bwd_setup(ctx, inputs, output):
        dy, x, noise, noise_strength, bias, scale, mean, rstd, alpha, gain, mask = inputs
        ctx.save_for_backward(dy, x, noise, noise_strength, bias, scale, rstd)
        ctx.params = (alpha, gain)
        ctx.mask = tuple(mask)

    def bwd_backward(ctx, *grads_of_grads):
        dy, x, noise, noise_strength, bias, scale, rstd = ctx.saved_tensors
        alpha, gain = ctx.params
        grads_of_grads = [g if wanted else None for g, wanted in zip(grads_of_grads, ctx.mask)]
        # The schema carries rstd, not eps: recover var + eps per plane from the saved rstd
        # so the reference reproduces the forward's normalisation exactly.
        with torch.no_grad():
            u = reference.activation(x, noise, noise_strength, bias, alpha, gain)
            var = u.var(dim=(2, 3), unbiased=False)
            eps_per_plane = rstd.to(u.dtype).reciprocal().square() - var
        # style_bias is not an input of *_bwd (dstyle_bias = sum_hw dy needs no value of it),
        # but the reference needs one to take dstyle_bias' gradient with respect to dy; y is
        # affine in style_bias, so any value serves.
        style_bias = torch.zeros_like(scale)

        def forward(x_, noise_, noise_strength_, bias_, scale_, style_bias_):
            return reference.layer_epilogue(
                x_, noise_, noise_strength_, bias_, scale_, style_bias_, alpha, gain, eps_per_plane
            )

        grad_dy, *grad_primals, _ = _library.reference_backward_of_backward(
            forward,
            (x, noise, noise_strength, bias, scale, style_bias),
            (dy,),
            grads_of_grads,
        )
        # mean, rstd (not differentiable), alpha, gain, output_mask
        return grad_dy, *grad_primals, None, None, None, None, None

    _library.register_autograd(fwd, fwd_backward, setup_context=fwd_setup)
    torch.library.register_autograd(bwd, bwd_backward, setup_context=bwd_setup)
    return Kernels(fwd=fwd, bwd=bwd)


EXTENSION = _register("")
TRITON = _register("_triton")


# The Triton kernels, on the *_triton schemas. Their module imports triton, so it is imported
# on the first call: the package imports without triton, and TRITON_INTERPRET may be set any
# time before that call.
def _triton_fwd(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps):
    from . import triton as kernels

    return kernels.forward(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps)


def _triton_bwd(dy, x, noise, noise_strength, bias, scale, mean, rstd, alpha, gain, output_mask):
    from . import triton as kernels

    return kernels.backward(
        dy, x, noise, noise_strength, bias, scale, mean, rstd, alpha, gain, output_mask
    )


torch.library.register_kernel(TRITON.fwd, ("cpu", "cuda"), _triton_fwd)
torch.library.register_kernel(TRITON.bwd, ("cpu", "cuda"), _triton_bwd)
