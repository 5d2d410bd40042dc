"""NVlabs' ``torch_utils.ops.bias_act``: :func:`bias_act` and :data:`activation_funcs`.

Mapping onto :func:`stylegan_fast.ops.bias_act` (same argument names and order; :func:`._impl.shim`
builds the shim from it):

- ``impl``: ``"cuda"`` (NVlabs' default: the fast op where it can run, else the reference)
  becomes our ``"auto"``; ``"ref"`` stays ``"ref"``.
- ``gain=None``: NVlabs' default gain per activation, from :data:`activation_funcs` (swish's
  is ``sqrt(2)`` there, where ``stylegan_fast.ops`` uses 1).
- ``act="elu"``: NVlabs' elu has no shape parameter (it is always ``exp(v) - 1`` below zero),
  so ``alpha`` is ignored for it, as there.
- Everything else passes through unchanged: ``alpha=None`` is each activation's default
  (lrelu 0.2), ``clamp=None`` means no clamping and a negative clamp is an error, ``dim``
  names the axis ``b`` runs along.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...ops import _validation as v
from ...ops.bias_act import bias_act as _bias_act
from . import _impl
from ._impl import init as _init  # noqa: F401  (NVlabs' scripts call _init())

__all__ = ["ActivationSpec", "activation_funcs", "bias_act"]


class ActivationSpec(dict):
    """One entry of :data:`activation_funcs`: a read-only mapping whose keys also read as
    attributes (``spec.def_gain`` and ``spec["def_gain"]``), as NVlabs' entries do."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _read_only(self, *args, **kwargs):
        raise TypeError("activation_funcs entries are read-only")

    __setitem__ = __delitem__ = __setattr__ = __delattr__ = _read_only
    clear = pop = popitem = setdefault = update = __ior__ = _read_only


def _spec(func, def_alpha, def_gain, cuda_idx, ref, has_2nd_grad) -> ActivationSpec:
    return ActivationSpec(
        func=func,
        def_alpha=def_alpha,
        def_gain=def_gain,
        cuda_idx=cuda_idx,
        ref=ref,
        has_2nd_grad=has_2nd_grad,
    )


def _identity(x, alpha=None):
    return x


def _relu(x, alpha=None):
    return F.relu(x)


def _leaky_relu(x, alpha=0.2):
    return F.leaky_relu(x, alpha)


def _tanh(x, alpha=None):
    return torch.tanh(x)


def _sigmoid(x, alpha=None):
    return torch.sigmoid(x)


def _elu(x, alpha=None):
    return F.elu(x)  # elu's own alpha stays 1, whatever alpha says


def _selu(x, alpha=None):
    return F.selu(x)


def _softplus(x, alpha=None):
    return F.softplus(x)


def _swish(x, alpha=None):
    return x * torch.sigmoid(x)


# The activations with NVlabs' documented defaults. Fields: ``func(x, alpha=...)`` (the
# activation alone), ``def_alpha``, ``def_gain``, ``cuda_idx`` (the activation's number in
# NVlabs' CUDA kernel), ``ref`` (which of the input "x" or output "y" its derivative is computed
# from; "" for linear), ``has_2nd_grad`` (whether its second derivative is nonzero somewhere).
activation_funcs: dict[str, ActivationSpec] = {
    "linear": _spec(_identity, 0, 1, 1, "", False),
    "relu": _spec(_relu, 0, math.sqrt(2), 2, "y", False),
    "lrelu": _spec(_leaky_relu, 0.2, math.sqrt(2), 3, "y", False),
    "tanh": _spec(_tanh, 0, 1, 4, "y", True),
    "sigmoid": _spec(_sigmoid, 0, 1, 5, "y", True),
    "elu": _spec(_elu, 0, 1, 6, "y", True),
    "selu": _spec(_selu, 0, 1, 7, "y", True),
    "softplus": _spec(_softplus, 0, 1, 8, "y", True),
    "swish": _spec(_swish, 0, math.sqrt(2), 9, "x", True),
}

# NVlabs' elu is F.elu with its fixed alpha of 1; ours takes alpha as elu's shape parameter.
_ELU_ALPHA = 1.0


def _nvlabs_alpha_gain(arguments: dict) -> None:
    """NVlabs' ``alpha`` and ``gain`` (``None``: the activation's default from
    :data:`activation_funcs`; elu's alpha fixed at 1) in ``arguments``, in place."""
    op = "bias_act"
    act = arguments["act"]
    if not isinstance(act, str) or act not in activation_funcs:
        raise ValueError(f"{op}: act must be one of {sorted(activation_funcs)}, got {act!r}")
    spec = activation_funcs[act]
    alpha = v.check_number(op, "alpha", arguments["alpha"], allow_none=True)
    if act == "elu":
        alpha = _ELU_ALPHA
    elif alpha is None:
        alpha = spec.def_alpha
    arguments["alpha"] = alpha
    if arguments["gain"] is None:
        arguments["gain"] = spec.def_gain


bias_act = _impl.shim(
    _bias_act,
    __name__,
    adapt=_nvlabs_alpha_gain,
    impl="cuda",
    doc="""NVlabs' fused bias + activation: ``clamp(act(x + b; alpha) * gain, -clamp, clamp)``.

    Args:
        x: ``[..., C, ...]``, any rank; fp16/bf16/fp32/fp64.
        b: ``[C]`` with ``C = x.shape[dim]``, same dtype and device as ``x``, or None.
        dim: the axis of ``x`` that ``b`` runs along (ignored without ``b``).
        act: a key of :data:`activation_funcs`.
        alpha: the activation's shape parameter (lrelu's slope), or None for its default.
        gain: output scale, or None for the activation's ``def_gain``.
        clamp: clamp the output to ``[-clamp, clamp]`` (>= 0), or None for no clamping.
        impl: ``"cuda"`` (the fastest available backend, falling back to the reference) or
            ``"ref"``; stylegan_fast's own ``"auto"``, ``"cpp"``, ``"triton"`` also work.

    Returns:
        ``y``, shaped like ``x``, differentiable to any order.
    """,
)
