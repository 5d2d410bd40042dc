"""bias_act: bias + activation + gain + clamp in one pass (NVlabs' ``bias_act`` semantics)."""

from __future__ import annotations

import torch

from ... import _backend
from .. import _validation as v
from . import reference, registration
from .reference import ACTIVATIONS

__all__ = ["bias_act", "ACTIVATIONS"]


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """Adds ``b`` to ``x`` along ``dim``, applies ``act``, multiplies by ``gain``, clamps.

    ``y = clamp(act(x + b; alpha) * gain, -clamp, clamp)``, differentiable to any order
    (the fast kernels serve the forward and the first two orders of piecewise-linear
    activations, which is what R1 through a discriminator needs).

    Args:
        x: ``[..., C, ...]``; any rank, any memory format; fp16/bf16/fp32/fp64.
        b: ``[C]`` with ``C = x.shape[dim]``, same dtype and device as ``x``, or None.
        dim: the axis of ``x`` that ``b`` runs along (negative counts from the end).
        act: one of ``linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish``.
        alpha: the activation's shape parameter (lrelu's slope, elu's alpha), or None for
            its default (lrelu 0.2, elu 1.0).
        gain: output scale, or None for the activation's default (relu/lrelu sqrt(2), else 1).
        clamp: clamp the output to ``[-clamp, clamp]``, or None for no clamping.
        impl: ``auto``, ``ref``, ``cpp``, ``cuda`` or ``triton`` (see ``stylegan_fast._backend``).

    Returns:
        ``y: [..., C, ...]``, shaped like ``x``; channels_last input gives channels_last output.
    """
    op = "bias_act"
    v.check_tensor(op, "x", x)
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"{op}: act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    spec = ACTIVATIONS[act]
    alpha = spec.default_alpha if alpha is None else v.check_number(op, "alpha", alpha)
    gain = spec.default_gain if gain is None else v.check_number(op, "gain", gain)
    clamp = v.check_number(op, "clamp", clamp, allow_none=True)
    if clamp is not None and not clamp >= 0:
        raise ValueError(f"{op}: clamp must be None or >= 0, got {clamp}")
    dim = v.check_int(op, "dim", dim)
    if b is not None:
        v.check_tensor(op, "b", b, ndim=1)
        if not -x.ndim <= dim < x.ndim:
            raise ValueError(
                f"{op}: dim must be in [{-x.ndim}, {x.ndim}) for x of shape "
                f"{list(x.shape)}, got {dim}"
            )
        dim %= x.ndim
        v.check_shape(op, "b", b, [x.shape[dim]], f"[x.shape[{dim}]]")
        v.check_like(op, "b", b, x)
    else:
        dim = 0  # unused without a bias; one canonical value keeps compiled graphs shared

    backend = _backend.resolve(op, impl, x.device, x=x)
    params = reference.Params(dim, act, alpha, gain, clamp)
    if backend == "ref":
        return reference.bias_act(x, b, params)
    kernels = registration.OP.kernels(backend)
    return kernels.fwd(x, b, *params)
