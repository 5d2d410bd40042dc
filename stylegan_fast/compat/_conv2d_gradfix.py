"""``conv2d`` / ``conv_transpose2d`` whose weight gradient can be switched off: the math
behind NVlabs' and rosinality's ``conv2d_gradfix`` modules (each compat package holds its own
switches and gets its two functions from :func:`module_functions`).

Write ``C(u, w) = conv2d(u, w)`` (stride ``s``, padding ``p``, dilation ``d``, groups ``g``)
for the map from the "large" space (``u: [N, I, Hl, Wl]``) to the "small" one
(``[N, O, Hs, Ws]``). Three maps, bilinear in their two arguments, are each other's
derivatives:

1. ``C(u, w)``.
2. ``Cᵀ(v, w)``, the adjoint in ``u``: ``<C(u, w), v> = <u, Cᵀ(v, w)>``. It is
   ``conv_transpose2d(v, w)`` with the same ``s, p, d, g``, its ``output_padding`` picking
   ``Hl`` among the sizes that ``C`` maps onto ``Hs``.
3. ``G(u, v) = ∂w <C(u, w), v>``, the weight gradient: ``<G(u, v), W> = <C(u, W), v>``.

So ``conv2d``: ``y = C(x, w) + b``, ``dx = Cᵀ(dy, w)``, ``dw = G(x, dy)``, ``db = Σ dy``;
``conv_transpose2d``: ``y = Cᵀ(x, w) + b``, ``dx = C(dy, w)``, ``dw = G(dy, x)``; and ``G``'s
own derivatives are ``∂u <G(u, v), W> = Cᵀ(v, W)``, ``∂v = C(u, W)``. Each map is an autograd
function whose backward calls the others, so gradients of every order are exact (R1
differentiates ``dx`` again), and every weight gradient, at every order, is computed only while
the owner's ``weight_gradients_disabled`` is False *when that backward runs*: NVlabs' and
rosinality's loops compute the forward pass, then call ``autograd.grad`` for R1 / path length
inside ``no_weight_gradients()``, then the penalty's backward outside it.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from types import ModuleType

import torch
import torch.nn.functional as F

from ..ops import _validation as v

__all__ = ["module_functions", "switched"]


@dataclass(frozen=True)
class _Geometry:
    """Stride, padding, dilation (each ``(y, x)``) and groups of ``C``."""

    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    def conv(self, u, w, bias, small_hw):
        """``C(u, w) + bias`` of spatial size ``small_hw``: [N, I, Hl, Wl] -> [N, O, Hs, Ws]."""
        y = F.conv2d(u, w, bias, self.stride, self.padding, self.dilation, self.groups)
        # C reaches past Hs only for a transposed conv whose output_padding is >= its stride
        # (allowed when dilation > stride): those rows are not part of the adjoint.
        return y[..., : small_hw[0], : small_hw[1]]

    def conv_transpose(self, v, w, bias, large_hw):
        """``Cᵀ(v, w) + bias`` of spatial size ``large_hw``: [N, O, Hs, Ws] -> [N, I, Hl, Wl]."""
        output_padding = [
            large_hw[i]
            - ((v.shape[2 + i] - 1) * self.stride[i] - 2 * self.padding[i]
               + self.dilation[i] * (w.shape[2 + i] - 1) + 1)
            for i in range(2)
        ]  # fmt: skip
        return F.conv_transpose2d(
            v, w, bias, self.stride, self.padding, output_padding, self.groups, self.dilation
        )

    def weight_grad(self, u, v, weight_shape):
        """``G(u, v)``: ``u: [N, I, Hl, Wl]``, ``v: [N, O, Hs, Ws]`` -> ``weight_shape``."""
        full = [
            (u.shape[2 + i] + 2 * self.padding[i] - self.dilation[i] * (weight_shape[2 + i] - 1)
             - 1) // self.stride[i] + 1
            for i in range(2)
        ]  # fmt: skip
        if full != list(v.shape[2:]):  # the rows of C(u) beyond Hs (see conv) meet zeros
            v = F.pad(v, (0, full[1] - v.shape[3], 0, full[0] - v.shape[2]))
        return torch.nn.grad.conv2d_weight(
            u, weight_shape, v, self.stride, self.padding, self.dilation, self.groups
        )


class _Conv(torch.autograd.Function):
    """``C(u, w) + b`` (``transpose=False``) or ``Cᵀ(u, w) + b``, of spatial size ``out_hw``."""

    @staticmethod
    def forward(ctx, u, w, b, geometry, transpose, out_hw, switches):
        ctx.save_for_backward(u, w)
        ctx.geometry, ctx.transpose, ctx.switches = geometry, transpose, switches
        if transpose:
            return geometry.conv_transpose(u, w, b, out_hw)
        return geometry.conv(u, w, b, out_hw)

    @staticmethod
    def backward(ctx, grad):
        u, w = ctx.saved_tensors
        geometry, transpose, switches = ctx.geometry, ctx.transpose, ctx.switches
        grad_u = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            in_hw = tuple(u.shape[2:])
            grad_u = _Conv.apply(grad, w, None, geometry, not transpose, in_hw, switches)
        if ctx.needs_input_grad[1] and not switches.weight_gradients_disabled:
            large, small = (grad, u) if transpose else (u, grad)
            grad_w = _WeightGrad.apply(large, small, geometry, tuple(w.shape), switches)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 2, 3))
        return grad_u, grad_w, grad_b, None, None, None, None


class _WeightGrad(torch.autograd.Function):
    """``G(u, v)``: the gradient of ``<C(u, w), v>`` with respect to ``w``."""

    @staticmethod
    def forward(ctx, u, v, geometry, weight_shape, switches):
        ctx.save_for_backward(u, v)
        ctx.geometry, ctx.switches = geometry, switches
        return geometry.weight_grad(u, v, weight_shape)

    @staticmethod
    def backward(ctx, grad):
        u, v = ctx.saved_tensors
        geometry, switches = ctx.geometry, ctx.switches
        grad_u = grad_v = None
        if ctx.needs_input_grad[0]:
            grad_u = _Conv.apply(v, grad, None, geometry, True, tuple(u.shape[2:]), switches)
        if ctx.needs_input_grad[1]:
            grad_v = _Conv.apply(u, grad, None, geometry, False, tuple(v.shape[2:]), switches)
        return grad_u, grad_v, None, None, None


def _pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as ``(y, x)``."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    values = tuple(v.check_int(op, name, item) for item in values)
    if min(values) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return values


def _checked(op, input, weight, bias, stride, padding, dilation, groups):
    v.check_tensor(op, "input", input, ndim=4)
    v.check_tensor(op, "weight", weight, ndim=4)
    if bias is not None:
        v.check_tensor(op, "bias", bias, ndim=1)
    groups = v.check_int(op, "groups", groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    stride = _pair(op, "stride", stride, 1)
    padding = _pair(op, "padding", padding, 0)
    dilation = _pair(op, "dilation", dilation, 1)
    return _Geometry(stride, padding, dilation, groups)


def module_functions(module_name: str):
    """``conv2d`` and ``conv_transpose2d`` with torch's signatures, reading the switches of the
    module ``module_name`` at each call: not ``enabled``, they are ``F.conv2d`` /
    ``F.conv_transpose2d`` themselves; ``enabled``, the autograd functions above, whose weight
    gradients follow ``weight_gradients_disabled``."""

    def conv2d(
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
    ) -> torch.Tensor:
        """``F.conv2d(input, weight, bias, stride, padding, dilation, groups)``, its weight
        gradient skipped in backward passes run inside ``no_weight_gradients()`` (when
        ``enabled``).

        Args:
            input: ``[N, I, H, W]``. weight: ``[O, I / groups, kh, kw]``. bias: ``[O]`` or None.
            stride, dilation: an int or ``(y, x)``, >= 1. padding: an int or ``(y, x)``, >= 0.
            groups: >= 1, dividing ``I`` and ``O``.

        Returns:
            ``[N, O, (H + 2 * py - dy * (kh - 1) - 1) // sy + 1, (likewise for W)]``.
        """
        switches = sys.modules[module_name]
        if not switches.enabled:
            return F.conv2d(input, weight, bias, stride, padding, dilation, groups)
        geometry = _checked("conv2d", input, weight, bias, stride, padding, dilation, groups)
        out_hw = tuple(
            (input.shape[2 + i] + 2 * geometry.padding[i]
             - geometry.dilation[i] * (weight.shape[2 + i] - 1) - 1) // geometry.stride[i] + 1
            for i in range(2)
        )  # fmt: skip
        return _Conv.apply(input, weight, bias, geometry, False, out_hw, switches)

    def conv_transpose2d(
        input: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None = None,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        dilation=1,
    ) -> torch.Tensor:
        """``F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
        dilation)``, its weight gradient skipped in backward passes run inside
        ``no_weight_gradients()`` (when ``enabled``).

        Args:
            input: ``[N, I, H, W]``. weight: ``[I, O / groups, kh, kw]``. bias: ``[O]`` or None.
            stride, dilation: an int or ``(y, x)``, >= 1. padding: an int or ``(y, x)``, >= 0.
            output_padding: an int or ``(y, x)``, below ``max(stride, dilation)`` on its axis.
            groups: >= 1, dividing ``I`` and ``O``.

        Returns:
            ``[N, O, (H - 1) * sy - 2 * py + dy * (kh - 1) + opy + 1, (likewise for W)]``.
        """
        switches = sys.modules[module_name]
        if not switches.enabled:
            return F.conv_transpose2d(
                input, weight, bias, stride, padding, output_padding, groups, dilation
            )
        op = "conv_transpose2d"
        geometry = _checked(op, input, weight, bias, stride, padding, dilation, groups)
        output_padding = _pair(op, "output_padding", output_padding, 0)
        for i in range(2):
            if output_padding[i] >= max(geometry.stride[i], geometry.dilation[i]):
                raise ValueError(
                    f"{op}: output_padding must be smaller than max(stride, dilation) on each "
                    f"axis (stride {geometry.stride}, dilation {geometry.dilation}), got "
                    f"{output_padding}"
                )
        out_hw = tuple(
            (input.shape[2 + i] - 1) * geometry.stride[i] - 2 * geometry.padding[i]
            + geometry.dilation[i] * (weight.shape[2 + i] - 1) + output_padding[i] + 1
            for i in range(2)
        )  # fmt: skip
        return _Conv.apply(input, weight, bias, geometry, True, out_hw, switches)

    conv2d.__module__ = conv_transpose2d.__module__ = module_name
    conv2d.__qualname__, conv_transpose2d.__qualname__ = "conv2d", "conv_transpose2d"
    return conv2d, conv_transpose2d


@contextlib.contextmanager
def switched(module: ModuleType, name: str, value: bool = True):
    """Sets ``module.<name>`` to True for the ``with`` block when ``value`` is true (else
    leaves it), and restores what it was, also when the block raises."""
    old = getattr(module, name)
    if value:
        setattr(module, name, True)
    try:
        yield
    finally:
        setattr(module, name, old)
