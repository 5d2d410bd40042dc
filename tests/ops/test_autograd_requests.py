"""Every op's first-order autograd asks its backward kernel for what the op's gradient table
(``ops/_registry.Gradients``, in each ``ops/<op>/registration.py``) says, and returns exactly
the gradients the table says, whichever autograd runs: csrc/autograd.cpp's C++ node (the
extension op ``<op>_fwd``, when ``_C`` registers it) or the Python one (the Triton op
``<op>_fwd_triton``; the same code serves ``<op>_fwd`` when ``_C`` has no autograd).

Op by op, for every subset of the optional tensor arguments present and every non-empty subset
of the present tensor arguments requiring grad, a ``TorchDispatchMode`` answers the op's
registered-op calls with their fake functions (no kernel runs: what is checked is what is asked
for) and records them: the bwd op's request (its bool arguments, ``compute_*`` flags or
``output_mask`` entries), whether the kernel is called at all, and which gradients come back
None. upfirdn2d's backward is the forward op again: its parameters must be the adjoint's
(``geometry.adjoint_params``, which the C++ node computes on its own).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from stylegan_fast import _library
from stylegan_fast.ops import _registry
from stylegan_fast.ops.upfirdn2d import geometry


def _sample_args(op: str) -> tuple:
    """Arguments of ``<op>_fwd`` with every optional tensor present (values never read)."""
    x = torch.randn(2, 3, 4, 4)
    per_channel, per_plane, noise = torch.randn(3), torch.randn(2, 3), torch.randn(2, 1, 4, 4)
    return {
        "bias_act": (x, per_channel, 1, "lrelu", 0.2, 1.4, None),
        "noise_injection": (x, noise, per_channel),
        "adain": (x, per_plane, per_plane.clone(), 1e-8),
        "layer_epilogue": (
            x,
            noise,
            per_channel,
            per_channel.clone(),
            per_plane,
            per_plane.clone(),
            0.2,
            1.4,
            1e-8,
        ),  # fmt: skip
        "upfirdn2d": (x, torch.ones(4, 4) / 16, 2, 2, 1, 1, 2, 1, 2, 1, False, 2.0),
    }[op]


class _Intercept(TorchDispatchMode):
    """Answers calls of ``kernels``' ops with the op's fake functions, recording each."""

    def __init__(self, op: _registry.RegisteredOp, kernels: _registry.Kernels):
        super().__init__()
        self.answers = {kernels.fwd: op.fwd.fake}
        if kernels.bwd is not None:
            self.answers[kernels.bwd] = op.bwd.fake
        self.calls: list[tuple[object, tuple]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.answers:
            self.calls.append((func, args))
            return self.answers[func](*args)
        return func(*args, **(kwargs or {}))


def _request(func, args) -> tuple[bool, ...]:
    """The bool arguments of a bwd call, ``bool[N]`` ones flattened."""
    request = []
    for value, arg in zip(args, func._schema.arguments):
        if str(arg.type) == "bool":
            request.append(bool(value))
        elif str(arg.type) == "List[bool]":
            request.extend(bool(v) for v in value)
    return tuple(request)


def _cases(op: _registry.RegisteredOp):
    """``(args, needs_grad)`` for every presence of the optional tensors and every non-empty
    set of present tensors requiring grad."""
    sample = _sample_args(op.name)
    schema = op.extension.fwd._schema.arguments
    tensors = [i for i, arg in enumerate(schema) if "Tensor" in str(arg.type)]
    optional = [i for i in tensors if str(schema[i].type) == "Optional[Tensor]"]
    for absent_count in range(len(optional) + 1):
        for absent in itertools.combinations(optional, absent_count):
            present = [i for i in tensors if i not in absent]
            for count in range(1, len(present) + 1):
                for wanted in itertools.combinations(present, count):
                    args = [
                        None if i in absent else (a.detach().requires_grad_(i in wanted))
                        if i in tensors else a
                        for i, a in enumerate(sample)
                    ]  # fmt: skip
                    needs = tuple(i in wanted for i in range(len(sample)))
                    yield tuple(args), needs


@pytest.mark.parametrize("backend", ["extension", "triton"])
@pytest.mark.parametrize("op_name", sorted(_registry.OPS))
def test_backward_requests_follow_the_gradient_table(op_name, backend):
    op = _registry.OPS[op_name]
    kernels = getattr(op, backend)
    table = op.gradients
    cpp_autograd = backend == "extension" and _library.has_kernel(f"{op_name}_fwd", "Autograd")
    checked = 0
    for args, needs in _cases(op):
        present = tuple(a is not None for a in args)
        mask = table.mask(op.inputs, needs, present)
        wrt = [a for a, need in zip(args, needs) if need]
        with _Intercept(op, kernels) as intercept:
            out = kernels.fwd(*args)
            y = out if isinstance(out, torch.Tensor) else out[0]
            assert ("CppNode" in y.grad_fn.name()) == cpp_autograd, y.grad_fn.name()
            grads = torch.autograd.grad(y, wrt, torch.ones_like(y), allow_unused=True)
        where = f"{op_name} ({backend}) requiring grad: " + ", ".join(
            name for name, need in zip(op.inputs, needs) if need
        )
        backward_calls = intercept.calls[1:]  # the first is the forward
        if not table.runs_kernel(op.inputs, needs, mask):
            assert not backward_calls, f"{where}: the kernel ran, the table asks for nothing"
        else:
            assert len(backward_calls) == 1, f"{where}: {len(backward_calls)} backward calls"
            func, call_args = backward_calls[0]
            if kernels.bwd is not None:
                assert func is kernels.bwd
                assert _request(func, call_args) == mask, f"{where}: request {call_args}"
            else:  # upfirdn2d: the adjoint, through the forward op
                _check_adjoint(args, call_args, where)
        required = [name for name, need in zip(op.inputs, needs) if need]
        got = {name: grad is not None for name, grad in zip(required, grads)}
        produced = table.produced(op.inputs, needs, mask)
        want = {name: p for name, p, need in zip(op.inputs, produced, needs) if need}
        assert got == want, f"{where}: gradients returned {got}, the table says {want}"
        checked += 1
    assert checked > 0


def _check_adjoint(args, call_args, where):
    x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain = args
    dy, f_again, *params = call_args
    out_h, out_w = dy.shape[2], dy.shape[3]
    up, down, padding, flip = geometry.adjoint_params(
        x.shape[2], x.shape[3], out_h, out_w, f.shape[0], f.shape[-1], (upx, upy),
        (downx, downy), (padx0, padx1, pady0, pady1), flip_filter,
    )  # fmt: skip
    assert f_again is f or torch.equal(f_again, f)
    assert params == [*up, *down, *padding, flip, gain], f"{where}: adjoint call {params}"
