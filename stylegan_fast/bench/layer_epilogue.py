"""layer_epilogue benchmark: StyleGAN's noise + bias + lrelu + instance norm + style, fused."""

from __future__ import annotations

from ..ops import layer_epilogue
from .harness import OpBench, nbytes, positional_call, randn
from .shapes import layer_shapes


def _make_inputs(shape, dtype, device, generator):
    n, c, h, w = shape

    def rand(*size, offset=0.0):
        return randn(*size, dtype=dtype, device=device, generator=generator, offset=offset)

    x, noise = rand(n, c, h, w), rand(n, 1, h, w)
    strength, bias = rand(c), rand(c)
    scale, style_bias = rand(n, c, offset=1.0), rand(n, c)
    # Everything but the drawn noise is a learned parameter or an activation.
    for t in (x, strength, bias, scale, style_bias):
        t.requires_grad_()
    return [x, noise, strength, bias, scale, style_bias]


def _floor_bytes(inputs, out):
    x, noise = nbytes(inputs[0]), nbytes(inputs[1])
    params = sum(nbytes(t) for t in inputs[2:])
    fwd = 2 * x + noise + params  # read x, noise, parameters; write y
    # fwd+bwd: read dy, x, noise, parameters; write dx and the parameter gradients
    return fwd, fwd + 3 * x + noise + 2 * params


BENCH = OpBench(
    "layer_epilogue", _make_inputs, positional_call(layer_epilogue), _floor_bytes, layer_shapes
)
