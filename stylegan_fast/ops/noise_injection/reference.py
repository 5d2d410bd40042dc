"""Eager reference of noise_injection: the specification every kernel is tested against.

For ``x: [N, C, H, W]``, ``noise: [N, 1, H, W]`` or ``[1, 1, H, W]`` and ``strength: [C]``:

1. ``y[n, c, h, w] = x[n, c, h, w] + strength[c] * noise[n', 0, h, w]``, with ``n' = n``
   for per-sample noise and ``n' = 0`` for one noise image broadcast over the batch.

Its gradients, for an incoming ``dy: [N, C, H, W]``:

2. ``dx = dy``;
3. ``dnoise[n', 0, h, w] = sum over c (and over n when noise is broadcast) of
   dy[n, c, h, w] * strength[c]``;
4. ``dstrength[c] = sum over n, h, w of dy[n, c, h, w] * noise[n', 0, h, w]``.

Steps 3 and 4 are bilinear, so every higher derivative is again one of these products.
Plain torch throughout, so it is differentiable to any order. It computes in the inputs' dtype:
in fp16/bf16 the product is rounded before the sum (two roundings where a kernel has one),
and autograd's sums in steps 3 and 4 accumulate in float32. Imports only torch.
"""

from __future__ import annotations

import torch


def noise_injection(x: torch.Tensor, noise: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Reference noise injection (arguments already validated; noise already drawn).

    Args:
        x: ``[N, C, H, W]``.
        noise: ``[N, 1, H, W]`` or ``[1, 1, H, W]``.
        strength: ``[C]``.

    Returns:
        ``y: [N, C, H, W]``; ``x`` comes first in the sum, so ``y`` takes ``x``'s layout.
    """
    # Expanding (a view) makes autograd form every product dy * noise and dy * strength before
    # summing, as steps 3 and 4 read. Broadcasting instead would sum dy over the batch first,
    # the same in real arithmetic but not with Inf: inf * a + inf * b is NaN when a and b have
    # opposite signs, inf * (a + b) is NaN only when a + b = 0.
    return x + strength.reshape(1, -1, 1, 1) * noise.expand(x.shape[0], 1, -1, -1)
