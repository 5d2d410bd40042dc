"""The dispatch counter: what it counts as a GPU kernel, and its counts of a G forward and a
training step of the tiny preset (the 256² numbers: ``python benchmarks/traffic.py
--dispatch``)."""

import importlib.util

import pytest
import torch

from stylegan_fast import ops
from stylegan_fast.bench import dispatch
from stylegan_fast.ops._common import triton_interpreting

# The workload counts replay each custom op's Triton plans with the interpreter.
needs_interpreter = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None or not triton_interpreting(),
    reason="replays the custom ops' Triton plans with the Triton interpreter (TRITON_INTERPRET=1)",
)


def _names(counter, kernel=True):
    return [c.name for c in counter.calls if c.kernel == kernel]


def test_views_allocations_and_no_op_copies_launch_nothing():
    x = torch.randn(4, 8)
    with dispatch.DispatchCounter() as counter:
        x.t().unsqueeze(0).reshape(-1, 4)[:2]  # views (the reshape of a 2-D [8, 4] one)
        x.reshape(-1)
        x.contiguous()  # already contiguous: returns x
        torch.empty(3)
        x.t().contiguous()  # a real copy
        y = x * 2
        y.add_(1)
        y.sum().item()
    assert _names(counter) == ["aten::clone", "aten::mul.Tensor", "aten::add_.Tensor", "aten::sum"]
    assert sum(c.sync for c in counter.calls) == 1
    mul = next(c for c in counter.calls if c.name == "aten::mul.Tensor")
    assert mul.bytes == 2 * x.numel() * 4  # read x, write y


def test_a_custom_op_is_one_record_unless_entered():
    x = torch.randn(2, 4, 8, 8).transpose(2, 3)  # the kernel makes it contiguous first
    b = torch.zeros(4)
    with dispatch.outputs_not_poisoned(), dispatch.DispatchCounter() as counter:
        ops.bias_act(x, b, act="lrelu", impl="cpp")
    assert [c.name for c in counter.calls if c.name.startswith("stylegan_fast")] == [
        "stylegan_fast::bias_act_fwd"
    ]
    assert not counter.aten_kernels()
    with (
        dispatch.outputs_not_poisoned(),
        dispatch.DispatchCounter(enter_custom_ops=True) as counter,
    ):
        ops.bias_act(x, b, act="lrelu", impl="cpp")
    # The C++ kernel's own contiguous copy is seen, and attributed to the package's op.
    inner = counter.aten_kernels(origin="package")
    assert [c.name for c in inner] in (["aten::contiguous"], ["aten::clone"])


@needs_interpreter
def test_generator_forward_counts_of_the_tiny_preset():
    counts = dispatch.generator_forward("tiny", batch=2)
    custom = counts.custom_by_op()
    # One fused epilogue per synthesis layer: two per resolution, 4x4 to 32x32.
    assert custom["stylegan_fast::layer_epilogue_fwd"] == 2 * 4
    assert counts.dispatched == len(counts.calls) > counts.aten_kernels > 0
    assert counts.syncs == 0  # inference never waits on the GPU
    # Every call is replayed on its Triton twin: at these small planes one launch each.
    assert counts.triton_kernel_launches() == sum(custom.values())
    text = dispatch.report(counts)
    assert "stylegan_fast::layer_epilogue_fwd  (8)" in text


@needs_interpreter
def test_train_step_counts_of_the_tiny_preset():
    counts = dispatch.train_step("tiny", batch=2)
    custom = counts.custom_by_op()
    # R1 differentiates D twice: its bias_act backward runs again as the double backward,
    # so there are more bias_act backward calls than forward ones.
    assert custom["stylegan_fast::bias_act_bwd"] > custom["stylegan_fast::bias_act_fwd"]
    assert custom["stylegan_fast::layer_epilogue_bwd"] > 0
    assert dispatch.optimizer_kernels(counts) > 0
    assert counts.triton_kernel_launches() >= sum(custom.values())


def test_adam_foreach_dispatches_a_few_ops_for_all_parameters():
    tensors, kernels, names = dispatch.adam_foreach("tiny")
    assert tensors > 20
    assert kernels < 15 and all(name.startswith("aten::_foreach_") for name in names)
