"""The one registration path (``ops/_registry.define_op``): what it defines for an op, and
that ``_backend`` refuses an op registered after ``freeze()`` (whose availability would be
probed on every call, which torch.compile cannot trace)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from stylegan_fast import _backend
from stylegan_fast.ops import _registry


@pytest.mark.parametrize("op_name", sorted(_registry.OPS))
def test_each_op_defines_its_extension_and_triton_ops(op_name):
    op = _registry.OPS[op_name]
    suffixes = ("_fwd", "_bwd") if op.bwd is not None else ("_fwd",)
    for backend, tail in (("extension", ""), ("triton", "_triton")):
        kernels = getattr(op, backend)
        defined = [kernels.fwd] + ([kernels.bwd] if kernels.bwd is not None else [])
        names = [o.name() for o in defined]
        assert names == [f"stylegan_fast::{op_name}{s}{tail}" for s in suffixes]
    assert op.kernels("triton") is op.triton
    assert op.kernels("cpp") is op.extension and op.kernels("cuda") is op.extension
    registered = _backend.op_kernels(op_name)
    assert (registered.extension_op, registered.triton_op) == (
        f"{op_name}_fwd",
        f"{op_name}_fwd_triton",
    )


def _late_op_stage():
    return _registry.Stage(
        "(Tensor x) -> Tensor",
        fake=lambda x: torch.empty_like(x),
        setup_context=lambda ctx, inputs, output: None,
        backward=lambda kernels, ctx, mask, dy: (dy,),
    )


def test_a_registration_after_freeze_is_refused():
    before = _backend.registered_ops()
    with pytest.raises(RuntimeError, match=r"registered after _backend\.freeze\(\)"):
        _backend.register(_backend.OpKernels("late_op", None, None))
    with pytest.raises(RuntimeError, match="Import its module from stylegan_fast/ops"):
        _registry.define_op(
            "late_op", fwd=_late_op_stage(), gradients=_registry.Gradients(always=("x",))
        )
    assert _backend.registered_ops() == before
    assert "late_op" not in _registry.OPS
    # Refused before anything was defined: no schema was left behind.
    assert not hasattr(torch.ops.stylegan_fast, "late_op_fwd")


def test_an_op_module_imported_after_freeze_fails_to_import():
    """An op package imported after ``stylegan_fast.ops`` (which freezes) fails loudly."""
    code = (
        "import stylegan_fast\n"
        "from stylegan_fast.ops import _registry\n"
        "import torch\n"
        "stage = _registry.Stage('(Tensor x) -> Tensor', lambda x: torch.empty_like(x),\n"
        "                        lambda ctx, i, o: None, lambda k, ctx, m, dy: (dy,))\n"
        "try:\n"
        "    _registry.define_op('late_op', fwd=stage, gradients=_registry.Gradients())\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("refused: stylegan_fast: op 'late_op' was registered after")


def test_a_gradient_table_must_match_the_bwd_schema():
    # Checked before the op is registered, so no freeze gets in the way.
    bwd = _registry.Stage(
        "(Tensor dy, Tensor x, bool[2] output_mask) -> (Tensor, Tensor)",
        fake=None,
        setup_context=None,
        backward=None,
    )
    table = _registry.Gradients(request=(_registry.Slot("x"),))
    with pytest.raises(ValueError, match="1 request slots but late_op_bwd takes 2"):
        _registry.define_op("late_op", fwd=_late_op_stage(), bwd=bwd, gradients=table)
    with pytest.raises(ValueError, match="names 'y', not an input"):
        _registry.define_op(
            "late_op", fwd=_late_op_stage(), gradients=_registry.Gradients(always=("y",))
        )


def test_gradient_table_semantics():
    inputs = ("x", "noise", "strength", "bias")
    table = _registry.Gradients(
        request=(_registry.Slot("noise", needs=("strength",)), _registry.Slot("bias")),
        always=("x",),
    )
    present = (True, True, False, True)
    needs = (False, True, False, True)
    mask = table.mask(inputs, needs, present)
    assert mask == (False, True)  # noise without its strength is not asked for
    assert table.runs_kernel(inputs, needs, mask)
    assert table.produced(inputs, needs, mask) == (False, False, False, True)
    assert not table.runs_kernel(inputs, (False, True, False, False), (False, False))
