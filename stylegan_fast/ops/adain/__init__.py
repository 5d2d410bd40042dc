"""adain: adaptive instance normalization (StyleGAN's style modulation) in one pass."""

from __future__ import annotations

import math

import torch

from ... import _backend
from .. import _validation as v
from . import reference, registration

__all__ = ["adain"]


def adain(
    x: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-8,
    impl: str = "auto",
) -> torch.Tensor:
    """Normalises each ``[H, W]`` plane of ``x`` to zero mean and unit variance, then styles it.

    ``y[n, c] = scale[n, c] * (x[n, c] - mean) * rsqrt(var + eps) + bias[n, c]`` with the
    plane's mean and population variance (StyleGAN's AdaIN). Statistics are computed in float32
    for float16/bfloat16 inputs. Differentiable to any order (the fast kernels serve the forward
    and the first backward; higher orders differentiate the reference).

    Args:
        x: ``[N, C, H, W]``; any memory format; fp16/bf16/fp32/fp64.
        scale: ``[N, C]``, same dtype and device as ``x`` (no broadcasting).
        bias: ``[N, C]``, same dtype and device as ``x`` (no broadcasting).
        eps: added to the variance, ``>= 0``.
        impl: ``auto``, ``ref``, ``cpp``, ``cuda`` or ``triton`` (see ``stylegan_fast._backend``).

    Returns:
        ``y: [N, C, H, W]``, shaped like ``x``; channels_last input gives channels_last output.
    """
    op = "adain"
    v.check_tensor(op, "x", x, ndim=4)
    v.check_tensor(op, "scale", scale)
    v.check_tensor(op, "bias", bias)
    planes = list(x.shape[:2])
    v.check_shape(op, "scale", scale, planes, "[N, C]")
    v.check_shape(op, "bias", bias, planes, "[N, C]")
    v.check_like(op, "scale", scale, x)
    v.check_like(op, "bias", bias, x)
    eps = v.check_number(op, "eps", eps)
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"{op}: eps must be finite and >= 0, got {eps}")

    backend = _backend.resolve(op, impl, x.device, x=x)
    if backend == "ref":
        return reference.adain(x, scale, bias, eps)
    kernels = registration.OP.kernels(backend)
    y, _mean, _rstd = kernels.fwd(x, scale, bias, eps)
    return y
