"""noise_injection benchmark: per-pixel noise times a learned per-channel strength."""

from __future__ import annotations

from ..ops import noise_injection
from .harness import OpBench, nbytes, positional_call, randn
from .shapes import layer_shapes


def _make_inputs(shape, dtype, device, generator):
    n, c, h, w = shape
    x = randn(shape, dtype=dtype, device=device, generator=generator)
    noise = randn(n, 1, h, w, dtype=dtype, device=device, generator=generator)
    strength = randn(c, dtype=dtype, device=device, generator=generator)
    # Noise is drawn, not learned: only x and the strength are differentiated.
    return [x.requires_grad_(), noise, strength.requires_grad_()]


def _floor_bytes(inputs, out):
    x, noise, strength = (nbytes(t) for t in inputs)
    fwd = 2 * x + noise + strength  # read x, noise, strength; write y
    return fwd, fwd + x + noise + strength  # read dy, noise; write dstrength (dx is dy itself)


BENCH = OpBench(
    "noise_injection", _make_inputs, positional_call(noise_injection), _floor_bytes, layer_shapes
)
