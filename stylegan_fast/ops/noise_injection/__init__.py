"""noise_injection: StyleGAN's per-pixel noise scaled by a learned per-channel strength."""

from __future__ import annotations

import torch

from ... import _backend
from .. import _validation as v
from . import reference, registration

__all__ = ["noise_injection"]


def noise_injection(
    x: torch.Tensor,
    noise: torch.Tensor | None = None,
    strength: torch.Tensor | None = None,
    impl: str = "auto",
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Adds one noise image per sample to every channel, scaled per channel.

    ``y[n, c, h, w] = x[n, c, h, w] + strength[c] * noise[n, 0, h, w]``, differentiable to
    any order with respect to all three tensors (``dx = dy``; the fast kernels compute the
    noise and strength gradients in one pass over ``dy``).

    Args:
        x: ``[N, C, H, W]``; any memory format; fp16/bf16/fp32/fp64.
        noise: ``[N, 1, H, W]``, or ``[1, 1, H, W]`` for one noise image shared by the whole
            batch (StyleGAN's fixed per-layer noise buffers), same dtype and device as ``x``;
            or None to draw fresh standard-normal noise ``[N, 1, H, W]`` with
            ``torch.randn(..., generator=generator)`` in ``x``'s dtype and device.
        strength: ``[C]``, same dtype and device as ``x``. Required.
        impl: ``auto``, ``ref``, ``cpp``, ``cuda`` or ``triton`` (see ``stylegan_fast._backend``).
        generator: the random generator the drawn noise comes from (for reproducible noise),
            on ``x``'s device type; only with ``noise=None``.

    Returns:
        ``y: [N, C, H, W]``; channels_last input gives channels_last output.
    """
    op = "noise_injection"
    v.check_tensor(op, "x", x, ndim=4)
    batch, channels, height, width = x.shape
    if strength is None:
        raise TypeError(f"{op}: strength is required: a [C] = [{channels}] tensor")
    v.check_tensor(op, "strength", strength, ndim=1)
    v.check_shape(op, "strength", strength, [channels], "[C]")
    v.check_like(op, "strength", strength, x)
    if noise is None:
        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise TypeError(
                    f"{op}: generator must be a torch.Generator or None, "
                    f"got {type(generator).__name__}"
                )
            if generator.device.type != x.device.type:
                raise ValueError(
                    f"{op}: generator is on {generator.device} but x is on {x.device}; "
                    "use a generator of x's device type"
                )
    else:
        if generator is not None:
            raise ValueError(f"{op}: generator is used only to draw noise, but noise was given")
        v.check_noise(op, noise, x)

    # Resolved before drawing, so a refused impl leaves the generator's state untouched.
    backend = _backend.resolve(op, impl, x.device, x=x)
    if noise is None:
        noise = torch.randn(
            [batch, 1, height, width], generator=generator, dtype=x.dtype, device=x.device
        )
    if backend == "ref":
        return reference.noise_injection(x, noise, strength)
    kernels = registration.OP.kernels(backend)
    return kernels.fwd(x, noise, strength)
