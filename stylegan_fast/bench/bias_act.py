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


def _min_bytes(inputs, out, mode):
    xb, bb = (nbytes(t) for t in inputs)
    if mode == "fwd":
        return 2 * xb + bb  # read x and b, write y
    if mode == "fwd+bwd":
        return 5 * xb + 3 * bb  # + read dy, x, b; write dx, db
    return None


BENCH = OpBench("bias_act", _make_inputs, _call, _min_bytes, layer_shapes)
