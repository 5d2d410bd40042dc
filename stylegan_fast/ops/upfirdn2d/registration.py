"""upfirdn2d's registered op: schema, fake function and autograd, once per kernel backend.

``upfirdn2d_fwd`` carries the ``_C`` kernels (CPU key: cpp, CUDA key: cuda) and
``upfirdn2d_fwd_triton`` the Triton ones. There is no separate backward op: upfirdn2d is linear
in ``x``, and its adjoint is upfirdn2d again (up and down swapped, the filter flipped, the
padding mirrored; see :func:`adjoint_params`). So the backward calls the forward op, whose own
backward calls it once more: every order of derivative with respect to ``x`` is a kernel call,
which is what R1 through a discriminator's blurred downsampling needs. The kernels treat ``f``
as a constant and give it no gradient (the public function sends a filter that requires grad
to the reference instead).
"""

from __future__ import annotations

import dataclasses

import torch

from ... import _library

FWD_SCHEMA = (
    "(Tensor x, Tensor f, int upx, int upy, int downx, int downy, int padx0, int padx1, "
    "int pady0, int pady1, bool flip_filter, float gain) -> Tensor"
)


@dataclasses.dataclass(frozen=True)
class Kernels:
    fwd: object


def output_size(in_size, up: int, down: int, pad0: int, pad1: int, taps: int):
    """Samples along one axis after upsampling, padding, 'valid' filtering, downsampling."""
    return (in_size * up + pad0 + pad1 - taps) // down + 1


# The Triton kernel unrolls every phase and tap and keeps a window of input rows in registers
# (up to taps x taps values per thread): it serves filters and factors up to these sizes.
TRITON_MAX_TAPS = 8
TRITON_MAX_FACTOR = 8


def triton_reason(fh: int, fw: int, up: tuple[int, int], down: tuple[int, int]) -> str | None:
    """Why the Triton kernel cannot serve a ``fh x fw`` filter with these factors (None: it
    can). The adjoint (up and down swapped, same filter) is served whenever the op is."""
    if max(fh, fw) > TRITON_MAX_TAPS:
        return (
            f"its kernel unrolls the filter taps and serves at most {TRITON_MAX_TAPS} per axis "
            f"(the filter is {fh}x{fw})"
        )
    if max(*up, *down) > TRITON_MAX_FACTOR:
        return (
            f"its kernel unrolls the output phases and serves up and down factors of at most "
            f"{TRITON_MAX_FACTOR} (up={list(up)}, down={list(down)})"
        )
    return None


def adjoint_params(in_h, in_w, out_h, out_w, fh, fw, up, down, padding, flip_filter):
    """``(up, down, padding, flip_filter)`` of the upfirdn2d that is the adjoint (transpose)
    of ``upfirdn2d(·, f, up, down, padding, flip_filter, gain)`` on ``[.., in_h, in_w]``.

    Along one axis the forward is ``y[m] = sum_k x[k] * g[k * up - m * down + pad0]`` with
    ``g`` the cross-correlation taps (``f`` flipped unless ``flip_filter``). Its transpose
    ``dx[k] = sum_m dy[m] * g[k * up - m * down + pad0]`` is upfirdn2d of ``dy`` with up and
    down swapped and the taps reversed (``flip_filter`` negated) once its first padding is
    ``taps - pad0 - 1``; the second padding makes the output exactly ``in`` samples long.
    """
    upx, upy = up
    downx, downy = down
    padx0, _, pady0, _ = padding
    adj_padding = (
        fw - padx0 - 1,
        in_w * upx - out_w * downx + padx0 - upx + 1,
        fh - pady0 - 1,
        in_h * upy - out_h * downy + pady0 - upy + 1,
    )
    return (downx, downy), (upx, upy), adj_padding, not flip_filter


def _register(suffix: str) -> Kernels:
    fwd = _library.define(f"upfirdn2d_fwd{suffix}", FWD_SCHEMA)

    @torch.library.register_fake(fwd)
    def _fwd_fake(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
        fh, fw = f.shape[0], f.shape[-1]
        out_h = output_size(x.shape[2], upy, downy, pady0, pady1, fh)
        out_w = output_size(x.shape[3], upx, downx, padx0, padx1, fw)
        y = x.new_empty([x.shape[0], x.shape[1], out_h, out_w])
        return y.contiguous(memory_format=_library.kernel_memory_format(x))

    def fwd_setup(ctx, inputs, output):
        x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain = inputs
        ctx.save_for_backward(f)
        ctx.in_size = (x.shape[2], x.shape[3])
        ctx.out_size = (output.shape[2], output.shape[3])
        ctx.params = ((upx, upy), (downx, downy), (padx0, padx1, pady0, pady1), flip_filter)
        ctx.gain = gain

    def fwd_backward(ctx, dy):
        none_tail = (None,) * 11  # f (a constant to the kernels) and the ten scalars
        if not ctx.needs_input_grad[0]:
            return None, *none_tail
        (f,) = ctx.saved_tensors
        up, down, padding, flip_filter = adjoint_params(
            *ctx.in_size, *ctx.out_size, f.shape[0], f.shape[-1], *ctx.params
        )
        dx = fwd(dy, f, *up, *down, *padding, flip_filter, ctx.gain)
        return dx, *none_tail

    _library.register_autograd(fwd, fwd_backward, fwd_setup)
    return Kernels(fwd=fwd)


EXTENSION = _register("")
TRITON = _register("_triton")


def _triton_fwd(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    # Imported on first call: the package imports without triton, and TRITON_INTERPRET may be
    # set any time before the first Triton call.
    from . import triton as triton_kernels

    return triton_kernels.upfirdn2d_fwd(
        x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain
    )


torch.library.register_kernel(TRITON.fwd, ("cpu", "cuda"), _triton_fwd)
