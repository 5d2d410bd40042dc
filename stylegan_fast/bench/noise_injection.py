"""noise_injection benchmark: per-pixel noise times a learned per-channel strength."""

from __future__ import annotations

from ..ops import noise_injection
from .harness import OpBench, nbytes, randn
from .shapes import layer_shapes


def _make_inputs(shape, dtype, device, generator):
    n, c, h, w = shape
    x = randn(shape, dtype=dtype, device=device, generator=generator)
    noise = randn(n, 1, h, w, dtype=dtype, device=device, generator=generator)
    strength = randn(c, dtype=dtype, device=device, generator=generator)
    # Noise is drawn, not learned: only x and the strength are differentiated.
    return [x.requires_grad_(), noise, strength.requires_grad_()]


def _call(inputs, impl):
    x, noise, strength = inputs
    return noise_injection(x, noise, strength, impl=impl)


def _min_bytes(inputs, out, mode):
    x, noise, strength = (nbytes(t) for t in inputs)
    fwd = 2 * x + noise + strength  # read x, noise, strength; write y
    if mode == "fwd":
        return fwd
    if mode == "fwd+bwd":
        return fwd + x + noise + strength  # read dy, noise; write dstrength (dx is dy itself)
    return None


BENCH = OpBench("noise_injection", _make_inputs, _call, _min_bytes, layer_shapes)
