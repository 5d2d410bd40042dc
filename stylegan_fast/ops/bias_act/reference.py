"""Eager reference of bias_act: the specification every kernel is tested against.

For ``x: [..., C (at dim), ...]`` and ``b: [C]``:

1. ``v = x + b`` (``b`` broadcast along ``dim``; skipped when ``b`` is None),
2. ``a = act(v; alpha)``,
3. ``y = a * gain``,
4. ``y = clamp(y, -clamp, clamp)`` when ``clamp`` is not None.

Plain torch throughout, so it is differentiable to any order. Imports only torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation's function ``fn(v, alpha)`` and its defaults."""

    fn: Callable[[torch.Tensor, float], torch.Tensor]
    default_alpha: float
    default_gain: float
    # Piecewise linear: its second derivative is zero almost everywhere, so the double
    # backward of bias_act needs no second-derivative term (what R1 through D relies on).
    piecewise_linear: bool


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda v, alpha: v, 0.0, 1.0, True),
    "relu": Activation(lambda v, alpha: F.relu(v), 0.0, math.sqrt(2), True),
    "lrelu": Activation(lambda v, alpha: F.leaky_relu(v, alpha), 0.2, math.sqrt(2), True),
    "tanh": Activation(lambda v, alpha: torch.tanh(v), 0.0, 1.0, False),
    "sigmoid": Activation(lambda v, alpha: torch.sigmoid(v), 0.0, 1.0, False),
    "elu": Activation(lambda v, alpha: F.elu(v, alpha), 1.0, 1.0, False),
    "selu": Activation(lambda v, alpha: F.selu(v), 0.0, 1.0, False),
    "softplus": Activation(lambda v, alpha: F.softplus(v), 0.0, 1.0, False),
    "swish": Activation(lambda v, alpha: v * torch.sigmoid(v), 0.0, math.sqrt(2), False),
}


class Params(NamedTuple):
    """bias_act's arguments after ``x`` and ``b``, validated and resolved, in the schemas'
    order (registration.py): the public function, the autograd and the reference pass them
    along together, and the kernels take them spread out (``*params``)."""

    # The axis ``b`` runs along (non-negative).
    dim: int
    # A key of :data:`ACTIVATIONS`.
    act: str
    # The activation's shape parameter and the output scale.
    alpha: float
    gain: float
    # Clamp the output to ``[-clamp, clamp]``, or None.
    clamp: float | None


def bias_act(x: torch.Tensor, b: torch.Tensor | None, params: Params) -> torch.Tensor:
    """Reference bias + activation.

    Args:
        x: ``[..., C, ...]`` with ``C = x.shape[params.dim]``.
        b: ``[C]`` or None.
        params: the other arguments, validated and resolved.

    Returns:
        ``y``, shaped like ``x``.
    """
    dim, act, alpha, gain, clamp = params
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    y = ACTIVATIONS[act].fn(x, alpha)
    if gain != 1:
        y = y * gain
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y
