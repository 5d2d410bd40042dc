"""adain benchmark: instance norm + per-sample style scale and bias."""

from __future__ import annotations

from ..ops import adain
from .harness import OpBench, nbytes, positional_call, randn
from .shapes import layer_shapes


def _make_inputs(shape, dtype, device, generator):
    n, c = shape[:2]
    x = randn(shape, dtype=dtype, device=device, generator=generator)
    scale = randn(n, c, dtype=dtype, device=device, generator=generator, offset=1.0)
    bias = randn(n, c, dtype=dtype, device=device, generator=generator)
    return [x.requires_grad_(), scale.requires_grad_(), bias.requires_grad_()]


def _floor_bytes(inputs, out):
    x, scale, bias = (nbytes(t) for t in inputs)
    fwd = 2 * x + scale + bias  # read x, scale, bias; write y
    return fwd, fwd + 3 * x + 2 * (scale + bias)  # read dy, x, scale; write dx, dscale, dbias


BENCH = OpBench("adain", _make_inputs, positional_call(adain), _floor_bytes, layer_shapes)
