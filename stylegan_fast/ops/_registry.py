"""The one registration path of every op: :func:`define_op` turns an op's description (its
schemas, fake functions, autograd and gradient table) into its registered ops and tells
``_backend`` about them.

For an op ``<op>`` it defines, in the ``stylegan_fast`` namespace:

- ``<op>_fwd`` and ``<op>_bwd`` (no ``_bwd`` for an op whose backward is its forward again,
  like upfirdn2d): the extension ops. ``_C`` adds their CPU and CUDA kernels
  (``TORCH_LIBRARY_IMPL`` in ``csrc/``), and csrc/autograd.cpp the first-order autograd of
  ``<op>_fwd`` (``_library.register_autograd`` then skips the Python one);
- ``<op>_fwd_triton`` and ``<op>_bwd_triton``: the same schemas, served by ``forward`` and
  ``backward`` of ``ops/<op>/triton.py``, imported on the first call (it imports triton: the
  package imports without it, and ``TRITON_INTERPRET`` may be set any time before that call);

each with the op's fake function and autograd. It registers the op with ``_backend`` first:
after ``_backend.freeze()`` that is refused, before anything is defined. Both backends' ops
share one autograd description, so what the kernels are asked for is the same whichever
serves.

The gradient table (:class:`Gradients`) says which gradients the backward of ``<op>_fwd`` asks
its kernel for, given which inputs need one. The Python autograd here computes its request
from it, and ``tests/ops/test_autograd_requests.py`` holds csrc/autograd.cpp's C++ node to it,
op by op and for every subset of inputs that require grad.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable

import torch

from .. import _backend, _library


@dataclasses.dataclass(frozen=True)
class Slot:
    """One entry of a backward kernel's request: it asks for the gradient of ``input`` (a
    ``<op>_fwd`` argument), and is set when that input needs a gradient and every argument in
    ``needs`` is present (not None)."""

    input: str
    needs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Gradients:
    """Which gradients the backward of ``<op>_fwd`` produces, and how it asks for them.

    ``request``: the bool arguments of ``<op>_bwd`` (``compute_*`` flags or the entries of an
    ``output_mask``), in schema order, one :class:`Slot` each. ``always``: inputs whose
    gradient the backward computes without a request (bias_act's dx, from the same pass as
    db; upfirdn2d's dx, its adjoint). ``passthrough``: inputs whose gradient is the incoming
    gradient itself (noise_injection's dx = dy, no kernel). Any other argument gets None.

    The backward runs its kernel when a slot is set or an ``always`` input needs a gradient,
    and returns a gradient exactly for the inputs that need one and are produced.
    """

    request: tuple[Slot, ...] = ()
    always: tuple[str, ...] = ()
    passthrough: tuple[str, ...] = ()

    def mask(self, inputs: tuple[str, ...], needs_grad, present) -> tuple[bool, ...]:
        """The request for ``<op>_fwd`` arguments named ``inputs``, of which ``needs_grad[i]``
        need a gradient and ``present[i]`` are not None."""
        index = {name: i for i, name in enumerate(inputs)}
        return tuple(
            bool(needs_grad[index[slot.input]]) and all(present[index[n]] for n in slot.needs)
            for slot in self.request
        )

    def runs_kernel(self, inputs, needs_grad, mask) -> bool:
        return any(mask) or any(needs_grad[inputs.index(name)] for name in self.always)

    def produced(self, inputs, needs_grad, mask) -> tuple[bool, ...]:
        """Per input: whether the backward returns a gradient (not None) for it."""
        requested = {slot.input for slot, wanted in zip(self.request, mask) if wanted}
        free = {*self.always, *self.passthrough}
        return tuple(
            bool(needs) and (name in requested or name in free)
            for name, needs in zip(inputs, needs_grad)
        )


@dataclasses.dataclass(frozen=True)
class Stage:
    """One registered op of a pair: its schema (``"(Tensor x, ...) -> Tensor"``), fake function
    (output shapes, strides and dtypes from the inputs'), and autograd.

    ``setup_context(ctx, inputs, output)`` saves what the backward needs. ``backward(kernels,
    ctx, *grads)`` gets the :class:`Kernels` of the backend that ran the forward; for a forward
    stage it also gets the request, ``backward(kernels, ctx, mask, *grads)``, and returns a
    gradient (or None) per argument, of which :class:`Gradients` keeps the produced ones.
    """

    schema: str
    fake: Callable
    setup_context: Callable
    backward: Callable


@dataclasses.dataclass(frozen=True)
class Kernels:
    """One backend's registered ops: ``fwd(*args)`` and ``bwd(*args)`` (None: no bwd op)."""

    fwd: torch._ops.OpOverload
    bwd: torch._ops.OpOverload | None


@dataclasses.dataclass(frozen=True)
class RegisteredOp:
    """What :func:`define_op` registered: the extension ops (``_C``'s kernels: cpp on CPU
    tensors, cuda on CUDA tensors) and the Triton ops, and the description they came from."""

    name: str
    inputs: tuple[str, ...]  # the <op>_fwd arguments, in schema order
    gradients: Gradients
    fwd: Stage
    bwd: Stage | None
    extension: Kernels
    triton: Kernels

    def kernels(self, backend: str) -> Kernels:
        """The ops that serve ``backend`` ("cpp", "cuda" or "triton")."""
        return self.triton if backend == "triton" else self.extension


# Every op define_op registered, by name (tests walk it: the recipe, the autograd requests).
OPS: dict[str, RegisteredOp] = {}


@functools.cache
def triton_module(op_name: str):
    """``stylegan_fast.ops.<op_name>.triton``, imported on first use (it imports triton)."""
    return importlib.import_module(f"{__package__}.{op_name}.triton")


def define_op(
    name: str,
    *,
    fwd: Stage,
    gradients: Gradients,
    bwd: Stage | None = None,
    cpu_preference: tuple[str, ...] = ("cpp",),
) -> RegisteredOp:
    """Defines and registers ``name``'s ops (see the module docstring) and the op itself with
    ``_backend`` (``cpu_preference``: what ``impl="auto"`` tries on CPU tensors before the
    reference). Returns them."""
    inputs = tuple(arg for _, arg in _schema_arguments(fwd.schema))
    if bwd is not None:
        requests = _request_size(bwd.schema)
        if requests != len(gradients.request):
            raise ValueError(
                f"{name}: the gradient table has {len(gradients.request)} request slots but "
                f"{name}_bwd takes {requests} (its bool arguments and bool[N] entries)"
            )
    for named in (*(s.input for s in gradients.request), *gradients.always, *gradients.passthrough):
        if named not in inputs:
            raise ValueError(f"{name}: the gradient table names {named!r}, not an input")
    # First: after _backend.freeze() this raises before anything is defined.
    _backend.register(
        _backend.OpKernels(
            name,
            extension_op=f"{name}_fwd",
            triton_op=f"{name}_fwd_triton",
            cpu_preference=cpu_preference,
        )
    )
    extension = _define_pair(name, "", inputs, fwd, bwd, gradients)
    triton = _define_pair(name, "_triton", inputs, fwd, bwd, gradients)

    def triton_forward(*args):
        return triton_module(name).forward(*args)

    torch.library.register_kernel(triton.fwd, ("cpu", "cuda"), triton_forward)
    if triton.bwd is not None:

        def triton_backward(*args):
            return triton_module(name).backward(*args)

        torch.library.register_kernel(triton.bwd, ("cpu", "cuda"), triton_backward)
    op = RegisteredOp(name, inputs, gradients, fwd, bwd, extension, triton)
    OPS[name] = op
    return op


def _define_pair(name, suffix, inputs, fwd: Stage, bwd: Stage | None, gradients) -> Kernels:
    fwd_op = _library.define(f"{name}_fwd{suffix}", fwd.schema)
    bwd_op = _library.define(f"{name}_bwd{suffix}", bwd.schema) if bwd is not None else None
    kernels = Kernels(fwd_op, bwd_op)
    torch.library.register_fake(fwd_op)(fwd.fake)
    forward_backward = functools.partial(_forward_backward, fwd, gradients, inputs, kernels)
    _library.register_autograd(fwd_op, forward_backward, _recording_presence(fwd.setup_context))
    if bwd is not None:
        torch.library.register_fake(bwd_op)(bwd.fake)
        torch.library.register_autograd(
            bwd_op, functools.partial(bwd.backward, kernels), setup_context=bwd.setup_context
        )
    return kernels


def _recording_presence(setup_context):
    def setup(ctx, inputs, output):
        # Which optional arguments were given: a Slot's `needs` reads it in the backward.
        ctx.present = tuple(a is not None for a in inputs)
        setup_context(ctx, inputs, output)

    return setup


def _forward_backward(fwd: Stage, gradients: Gradients, inputs, kernels, ctx, *grad_outputs):
    needs = ctx.needs_input_grad
    mask = gradients.mask(inputs, needs, ctx.present)
    grads = [None] * len(inputs)
    if gradients.runs_kernel(inputs, needs, mask):
        # The leading arguments' gradients; the (non-tensor) rest stay None.
        computed = fwd.backward(kernels, ctx, mask, *grad_outputs)
        grads[: len(computed)] = computed
    for name in gradients.passthrough:
        grads[inputs.index(name)] = grad_outputs[0]
    produced = gradients.produced(inputs, needs, mask)
    return tuple(g if keep else None for g, keep in zip(grads, produced))


def _schema_arguments(schema: str) -> list[tuple[str, str]]:
    """``(type, name)`` of each argument of ``"(Tensor x, bool[3] mask) -> ..."``."""
    return [(str(arg.type), arg.name) for arg in _parse(schema).arguments]


def _request_size(schema: str) -> int:
    """Booleans a schema takes: its ``bool`` arguments and the entries of its ``bool[N]``."""
    sizes = {"bool": lambda arg: 1, "List[bool]": lambda arg: arg.N}
    return sum(sizes[str(a.type)](a) for a in _parse(schema).arguments if str(a.type) in sizes)


def _parse(schema: str):
    return torch._C.parse_schema(f"{_library.NAMESPACE}::_{schema}")
