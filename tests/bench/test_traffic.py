"""Interpreter-counted memory traffic: the counter itself (on small kernels of its own), the
CUDA pose, and each op's Triton plans against their documented traffic model
(``op_traffic.MODELS``) on one case per plan kind."""

import dataclasses

import pytest
import torch

from stylegan_fast.ops._common import triton_interpreting

pytestmark = pytest.mark.skipif(
    not triton_interpreting(),
    reason="counts traffic with the Triton interpreter (TRITON_INTERPRET=1, as tests/conftest.py "
    "sets by default)",
)
triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from stylegan_fast.bench import op_traffic, traffic  # noqa: E402

# --- the counter, on kernels of known traffic -----------------------------------------------


@triton.jit
def _copy_twice(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    # Loads src twice (the second load re-reads the same bytes), stores dst once; lanes past n
    # are masked off and must not count.
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    first = tl.load(src_ptr + offsets, mask=mask, other=0.0)
    second = tl.load(src_ptr + offsets, mask=mask, other=0.0)
    tl.store(dst_ptr + offsets, first + second, mask=mask)


@triton.jit
def _scalar_sum(src_ptr, dst_ptr):
    # Unmasked scalar loads and store: create_load / create_store.
    tl.store(dst_ptr, tl.load(src_ptr) + tl.load(src_ptr + 1))


@triton.jit
def _block_pointer_copy(src_ptr, dst_ptr, n, BLOCK: tl.constexpr):
    src = tl.make_block_ptr(src_ptr, (n,), (1,), (0,), (BLOCK,), (0,))
    dst = tl.make_block_ptr(dst_ptr, (n,), (1,), (0,), (BLOCK,), (0,))
    tl.store(dst, tl.load(src, boundary_check=(0,)), boundary_check=(0,))


def test_masked_lanes_are_excluded_and_repeats_counted_once_as_unique():
    src = torch.arange(10, dtype=torch.float32)
    dst = torch.empty(10, dtype=torch.float32)
    with traffic.count_traffic() as trace:
        _copy_twice[(2,)](src, dst, 10, BLOCK=8)
    assert torch.equal(dst, 2 * src)
    (launch,) = trace.launches
    assert launch.short_name == "_copy_twice"
    assert launch.grid == (2, 1, 1)
    assert (launch.loaded, launch.loaded_unique) == (2 * 40, 40)
    assert (launch.stored, launch.stored_unique) == (40, 40)
    assert trace.by_storage(src) == dict(loaded=80, stored=0, loaded_unique=40, stored_unique=0)
    assert trace.by_storage(dst)["stored"] == 40
    assert launch.unknown_loaded == launch.unknown_stored == 0


def test_unmasked_scalar_accesses_count_their_element_size():
    src = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    dst = torch.zeros(1, dtype=torch.float64)
    with traffic.count_traffic() as trace:
        _scalar_sum[(1,)](src, dst)
    assert dst.item() == 3.0
    assert (trace.loaded, trace.loaded_unique, trace.stored) == (16, 16, 8)


def test_block_pointer_accesses_are_counted_where_triton_has_them():
    src = torch.arange(12, dtype=torch.float16)
    dst = torch.zeros(12, dtype=torch.float16)
    try:
        with traffic.count_traffic() as trace:
            _block_pointer_copy[(1,)](src, dst, 12, BLOCK=16)
    except Exception as exc:  # Triton 3.9 removed block pointers (NotImplementedError inside)
        if "removed" in str(exc) or "NotImplementedError" in repr(exc):
            pytest.skip(f"triton {triton.__version__} has no block pointers")
        raise
    assert torch.equal(dst, src)
    assert (trace.loaded, trace.stored) == (24, 24)


def test_recording_without_executing_leaves_outputs_unwritten():
    src = torch.ones(10)
    dst = torch.zeros(10)
    with traffic.count_traffic(execute=False) as trace:
        _copy_twice[(3,)](src, dst, 10, BLOCK=4)
    assert [(launch.short_name, launch.grid, launch.executed) for launch in trace.launches] == [
        ("_copy_twice", (3, 1, 1), False)
    ]
    assert trace.loaded == 0 and not dst.any()


def test_the_interpreter_is_restored_after_counting():
    import triton.runtime.interpreter as interpreter

    builder = type(interpreter.interpreter_builder)
    before = (builder.create_masked_load, interpreter.GridExecutor.__call__)
    with traffic.count_traffic():
        assert builder.create_masked_load is not before[0]
    assert (builder.create_masked_load, interpreter.GridExecutor.__call__) == before


def test_posing_as_cuda_is_undone():
    x = torch.zeros(1)
    properties = torch.cuda.get_device_properties
    with traffic.posing_as_cuda() as props:
        assert x.is_cuda and x.device.type == "cpu"
        assert torch.cuda.get_device_properties(0).multi_processor_count == 132
        assert props.regs_per_multiprocessor == 65536
        with torch.cuda.device(0):
            assert torch.cuda.current_device() == 0
    assert not x.is_cuda
    assert torch.cuda.get_device_properties is properties


# --- the ops' plans against their model -----------------------------------------------------

# One case per plan kind (fwd, bwd, and R1 where noted), small enough for the interpreter:
# ~25 s on a 2-core CPU in all.
PLAN_CASES = [
    # bias_act: NCHW (db partials + their sum), channels_last with db in one row, R1
    ("bias_act", 8, "nchw", "fp32", ("fwd", "bwd", "r1")),
    ("bias_act", 8, "cl", "fp16", ("fwd", "bwd")),
    ("bias_act", 16, "cl", "fp32", ("bwd",)),
    # noise_injection: NCHW, channels_last, R1
    ("noise_injection", 16, "nchw", "fp32", ("fwd", "bwd", "r1")),
    ("noise_injection", 16, "cl", "fp16", ("fwd", "bwd")),
    # adain: one pass, the one-pass limit (the backward's reload), channels_last one pass,
    # and the split plan (channels_last from 64x64)
    ("adain", 16, "nchw", "fp32", ("fwd", "bwd", "r1")),
    ("adain", 128, "nchw", "fp16", ("fwd", "bwd")),
    ("adain", 32, "cl", "fp32", ("fwd", "bwd")),
    ("adain", 64, "cl", "fp32", ("fwd", "bwd")),
    # layer_epilogue: the same plan kinds with the fused prologue and the batch sum
    ("layer_epilogue", 8, "nchw", "fp32", ("fwd", "bwd", "r1")),
    ("layer_epilogue", 128, "nchw", "fp32", ("bwd",)),
    ("layer_epilogue", 64, "cl", "fp16", ("fwd", "bwd")),
    # the NCHW split plan (planes above 128x128)
    ("layer_epilogue", 256, "nchw", "fp32", ("fwd",)),
    # upfirdn2d: both directions, both layouts, R1
    ("upsample2d", 32, "nchw", "fp32", ("fwd", "bwd", "r1")),
    ("downsample2d", 32, "cl", "fp16", ("fwd", "bwd")),
]


@pytest.fixture(scope="module")
def measured():
    results = {}
    for op, plane, layout, dtype, passes in PLAN_CASES:
        case = op_traffic.Case(op, plane, layout, dtype)
        results[case] = op_traffic.measure(case, passes)
    return results


@pytest.mark.parametrize(
    "op, plane, layout, dtype, passes", PLAN_CASES, ids=lambda v: str(v) if v else None
)
def test_plan_traffic_matches_its_model(measured, op, plane, layout, dtype, passes):
    case = op_traffic.Case(op, plane, layout, dtype)
    problems = [
        line
        for pass_name, p in measured[case].items()
        for line in op_traffic.check(case, pass_name, p)
    ]
    assert not problems, "\n".join(problems)


def test_fused_passes_move_their_minimum(measured):
    # The one-pass plans move each input and output once: their unique bytes are the minimum
    # up to the small per-plane statistics and partial sums.
    for op, plane in (("bias_act", 8), ("adain", 16), ("layer_epilogue", 8)):
        passes = measured[op_traffic.Case(op, plane, "nchw", "fp32")]
        for pass_name in ("fwd", "bwd"):
            assert 1.0 <= passes[pass_name].ratio_unique < 1.1, (op, pass_name)


def test_the_check_catches_an_extra_read_but_not_partial_sums(measured):
    case = op_traffic.Case("adain", 16, "nchw", "fp32")
    bwd = measured[case]["bwd"]
    assert not op_traffic.check(case, "bwd", bwd)
    # Partial sums and statistics live in other buffers: more of them is not a model break.
    more_partials = dataclasses.replace(
        bwd, loaded=bwd.loaded * 2, loaded_unique=bwd.loaded_unique * 2
    )
    assert not op_traffic.check(case, "bwd", more_partials)
    # A second read of x (a split plan where one pass was promised) is.
    tensors = {name: dict(stats) for name, stats in bwd.tensors.items()}
    tensors["x"]["loaded_unique"] += 1.0
    tensors["x"]["loaded"] += 1.0
    extra_read = dataclasses.replace(bwd, tensors=tensors)
    assert any("x loaded" in line for line in op_traffic.check(case, "bwd", extra_read))
    one_more_launch = dataclasses.replace(bwd, launches=bwd.launches * 2)
    assert any("launches" in line for line in op_traffic.check(case, "bwd", one_more_launch))


def test_every_default_case_has_exactly_one_model_row():
    for case, passes in op_traffic.default_sweep(full=True):
        for pass_name in passes:
            rows = [m for m in op_traffic.MODELS if m.matches(case, pass_name)]
            assert len(rows) == 1, (case, pass_name, rows)


def test_minimum_formulas():
    sizes = dict(X=1000, Y=250, Z=100, P=10)
    assert op_traffic.MINIMUM["bias_act"].bytes("fwd", sizes) == 2010
    assert op_traffic.MINIMUM["layer_epilogue"].bytes("bwd", sizes) == 3120
    assert op_traffic.MINIMUM["downsample2d"].bytes("r1", sizes) == 3750
    assert op_traffic.MINIMUM["noise_injection"].formula("fwd") == "2X + Z + P"
