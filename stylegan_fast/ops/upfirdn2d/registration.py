"""upfirdn2d's registered ops (``ops/_registry.define_op``): ``upfirdn2d_fwd`` (``_C``'s
kernels) and ``upfirdn2d_fwd_triton``, with their fake function and autograd.

There is no backward op: upfirdn2d is linear in ``x``, and its adjoint is upfirdn2d again (up
and down swapped, the filter flipped, the padding mirrored; see
:func:`geometry.adjoint_params`). So the backward calls the forward op, whose own backward
calls it once more: every order of derivative with respect to ``x`` is a kernel call, which is
what R1 through a discriminator's blurred downsampling needs. The kernels treat ``f`` as a
constant and give it no gradient (the public function sends a filter that requires grad to
the reference instead).
"""

from __future__ import annotations

from ... import _library
from .. import _registry
from .geometry import adjoint_params, output_size

FWD_SCHEMA = (
    "(Tensor x, Tensor f, int upx, int upy, int downx, int downy, int padx0, int padx1, "
    "int pady0, int pady1, bool flip_filter, float gain) -> Tensor"
)


def _fwd_fake(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    fh, fw = f.shape[0], f.shape[-1]
    out_h = output_size(x.shape[2], upy, downy, pady0, pady1, fh)
    out_w = output_size(x.shape[3], upx, downx, padx0, padx1, fw)
    y = x.new_empty([x.shape[0], x.shape[1], out_h, out_w])
    return y.contiguous(memory_format=_library.kernel_memory_format(x))


def _fwd_setup(ctx, inputs, output):
    x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain = inputs
    ctx.save_for_backward(f)
    ctx.in_size = (x.shape[2], x.shape[3])
    ctx.out_size = (output.shape[2], output.shape[3])
    ctx.params = ((upx, upy), (downx, downy), (padx0, padx1, pady0, pady1), flip_filter)
    ctx.gain = gain


def _fwd_backward(kernels, ctx, mask, dy):
    (f,) = ctx.saved_tensors
    up, down, padding, flip_filter = adjoint_params(
        *ctx.in_size, *ctx.out_size, f.shape[0], f.shape[-1], *ctx.params
    )
    return (kernels.fwd(dy, f, *up, *down, *padding, flip_filter, ctx.gain),)


OP = _registry.define_op(
    "upfirdn2d",
    fwd=_registry.Stage(FWD_SCHEMA, _fwd_fake, _fwd_setup, _fwd_backward),
    # dx only (the adjoint, asked for by nothing: the op has no bwd kernel); f is a constant.
    gradients=_registry.Gradients(always=("x",)),
    # cpu_preference stays "cpp": it beat the reference on every StyleGAN case measured
    # (forward, fp32, 2 threads, median of 21 runs, setup_filter([1, 3, 3, 1]); 2026-11-23,
    # on a 2-core machine shared with other jobs, so the ratios are indicative):
    #   upsample2d   [8, 512, 8, 8] 6.4x, [4, 64, 64, 64] 6.1x
    #   downsample2d [8, 512, 8, 8] 3.0x, [4, 64, 64, 64] 1.7x
    #   filter2d     [8, 512, 8, 8] 1.3x, [4, 64, 64, 64] 1.2x
    cpu_preference=("cpp",),
)
