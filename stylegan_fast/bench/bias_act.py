"""bias_act benchmark: bias + leaky ReLU (gain sqrt 2) on StyleGAN layer shapes."""

from __future__ import annotations

from ..ops import bias_act
from .harness import OpBench, nbytes, randn
from .shapes import layer_shapes


def _make_inputs(shape, dtype, device, generator):
    x = randn(shape, dtype=dtype, device=device, generator=generator)
    b = randn(shape[1], dtype=dtype, device=device, generator=generator)
    return [x.requires_grad_(), b.requires_grad_()]


def _call(inputs, impl):
    x, b = inputs
    return bias_act(x, b, act="lrelu", impl=impl)


def _floor_bytes(inputs, out):
    xb, bb = (nbytes(t) for t in inputs)
    # fwd: read x and b, write y; fwd+bwd: + read dy, x, b; write dx, db
    return 2 * xb + bb, 5 * xb + 3 * bb


BENCH = OpBench("bias_act", _make_inputs, _call, _floor_bytes, layer_shapes)
