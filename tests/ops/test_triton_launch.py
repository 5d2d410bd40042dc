"""The launch contract of every Triton launcher (bias_act, noise_injection, upfirdn2d, adain,
layer_epilogue and the partial-sum kernel), checked on CPU.

Launches are recorded instead of run (``InterpretedFunction.run`` stubbed, as
``.ci/compile_triton.py`` records them); for the GPU plans, CPU tensors pose as CUDA tensors of
device 1 of an H100 (``is_cuda`` patched, 132 SMs, ``_triton_launch.cuda_index`` answering 1).

- Float scalars (alpha, gain, clamp, eps, the slopes) are runtime arguments: two calls that
  differ only in them launch the same specializations, and no launch passes a float constexpr.
- Every launch, forward, backward and double backward, runs inside a device guard for its
  input's device (Triton launches on the current device).
- Reduction and persistent grids are one wave of the compiled kernel: its resident programs
  per SM (from registers, warps and shared memory) times the SMs.
"""

from __future__ import annotations

import dataclasses
import inspect
import types

import pytest
import torch

pytest.importorskip("triton")

from stylegan_fast.ops import _triton_launch as tl_launch  # noqa: E402

SMS = 132

# Float constexprs allowed, as {kernel name: {argument: why it must be compile-time}}: none.
FLOAT_CONSTEXPR_ALLOWED: dict[str, dict[str, str]] = {}

# Every kernel the launchers launch; _run_every_op must reach each of them.
KERNELS = {
    "_bias_act_kernel",
    "_sum_rows_kernel",
    "_noise_fwd_kernel",
    "_noise_bwd_kernel",
    "_upfirdn2d_kernel",
    "_forward_one_pass",
    "_forward_chunk_statistics",
    "_forward_finalize",
    "_forward_apply",
    "_backward_one_pass",
    "_backward_chunk_sums",
    "_backward_finalize",
    "_backward_apply",
    "_noise_gradient",
    "_column_sums",
}

# Shapes that, on the GPU plans, take every plane-norm plan (whole-plane tiles, sweep, split;
# in both layouts), split the bias and noise reductions over programs and shrink upfirdn2d's
# tiles.
SHAPES = [(2, 8, 8, 8), (1, 16, 32, 32), (1, 2, 128, 128), (1, 2, 256, 256)]


@dataclasses.dataclass
class Launch:
    fn: object  # the kernel's Python function
    args: tuple
    kwargs: dict
    grid: tuple
    device: int | None  # the CUDA device made current around the launch (None: no guard)

    @property
    def name(self) -> str:
        return self.fn.__name__

    def bound(self) -> dict:
        """Every argument by name (launch options such as num_warps left out)."""
        names = list(inspect.signature(self.fn).parameters)
        values = dict(zip(names, self.args))
        values.update({k: v for k, v in self.kwargs.items() if k in names})
        return values


@pytest.fixture
def launches(monkeypatch):
    """The launches made while the test runs (none executes), each with the device guard
    around it: ``torch.cuda.device`` is replaced by a recorder."""
    if not tl_launch.INTERPRETING:
        pytest.skip("records launches by stubbing the interpreter (TRITON_INTERPRET=1)")
    from triton.runtime import interpreter

    recorded: list[Launch] = []
    current: list[int] = []

    class DeviceGuard:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            current.append(self.index)

        def __exit__(self, *exc):
            current.pop()
            return False

    def run(self, *args, grid, warmup=False, **kwargs):
        device = current[-1] if current else None
        recorded.append(Launch(self.fn, args, kwargs, tuple(grid), device))

    monkeypatch.setattr(interpreter.InterpretedFunction, "run", run)
    monkeypatch.setattr(torch.cuda, "device", DeviceGuard)
    return recorded


@pytest.fixture
def gpu_plans(monkeypatch):
    """CPU tensors pose as CUDA tensors on device 1 of a 132-SM GPU: launchers take their GPU
    plans (grids of one wave use the interpreter's default programs per SM)."""
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda *a, **k: types.SimpleNamespace(multi_processor_count=SMS),
    )
    monkeypatch.setattr(tl_launch, "cuda_index", lambda t: 1)
    tl_launch._device_limits.cache_clear()
    yield
    tl_launch._device_limits.cache_clear()


SCALARS = [
    dict(alpha=0.2, gain=2**0.5, clamp=256.0, eps=1e-8),
    dict(alpha=0.1, gain=1.0, clamp=0.5, eps=1e-5),
]


def _run_every_op(shape, dtype, channels_last, scalars) -> None:
    """Forward, backward and (bias_act, downsample2d: R1's) double backward of every op with
    impl="triton", every gradient requested (dnoise of per-sample and shared noise too)."""
    from stylegan_fast import ops

    n, c, h, w = shape
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def leaf(*size, fmt=torch.contiguous_format):
        return torch.randn(*size).to(dtype=dtype, memory_format=fmt).requires_grad_()

    def grads(y, *inputs, create_graph=False):
        return torch.autograd.grad(y.float().square().sum(), inputs, create_graph=create_graph)

    s = scalars
    x = leaf(n, c, h, w, fmt=fmt)
    b, strength, scale, shift = leaf(c), leaf(c), leaf(n, c), leaf(n, c)
    f = ops.setup_filter([1, 3, 3, 1])
    y = ops.bias_act(x, b, act="lrelu", alpha=s["alpha"], gain=s["gain"], impl="triton")
    (gx,) = grads(y, x, create_graph=True)
    grads(gx, x, b)
    y = ops.bias_act(x, b, act="elu", alpha=s["alpha"], gain=s["gain"], clamp=s["clamp"],
                     impl="triton")  # fmt: skip
    grads(y, x, b)
    (gx,) = grads(ops.downsample2d(x, f, gain=s["gain"], impl="triton"), x, create_graph=True)
    grads(gx, x)
    grads(ops.upsample2d(x, f, gain=s["gain"], impl="triton"), x)
    grads(ops.filter2d(x, f, gain=s["gain"], impl="triton"), x)
    grads(ops.adain(x, scale, shift, eps=s["eps"], impl="triton"), x, scale, shift)
    for noise in (leaf(n, 1, h, w), leaf(1, 1, h, w)):
        grads(ops.noise_injection(x, noise, strength, impl="triton"), x, noise, strength)
        y = ops.layer_epilogue(x, noise, strength, b, scale, shift, alpha=s["alpha"],
                               gain=s["gain"], eps=s["eps"], impl="triton")  # fmt: skip
        grads(y, x, noise, strength, b, scale, shift)


def _is_constexpr(fn, name: str) -> bool:
    annotation = inspect.signature(fn).parameters[name].annotation
    return "constexpr" in str(annotation)


def _specialization(launch: Launch):
    """What of a launch Triton's JIT compiles on: each argument's type (a float is an fp32
    runtime value), ints by value (same shapes, same ints), constexprs and options whole."""

    def spec(value):
        if isinstance(value, torch.Tensor):
            return ("tensor", value.dtype)
        if isinstance(value, float):
            return "fp32"
        return repr(value)

    kwargs = {}
    for k, v in launch.kwargs.items():
        is_constexpr = k not in inspect.signature(launch.fn).parameters or _is_constexpr(
            launch.fn, k
        )
        kwargs[k] = repr(v) if is_constexpr else spec(v)
    return (launch.name, tuple(spec(a) for a in launch.args), tuple(sorted(kwargs.items())))


@pytest.mark.parametrize("channels_last", [False, True])
def test_float_scalars_are_runtime_arguments(launches, gpu_plans, channels_last):
    """Two runs of every op that differ only in alpha, gain, clamp and eps launch the same
    specializations (a new value compiles nothing), and no launch passes a float constexpr."""
    runs = []
    for scalars in SCALARS:
        launches.clear()
        for shape in SHAPES[:2]:
            _run_every_op(shape, torch.float16, channels_last, scalars)
        runs.append([_specialization(launch) for launch in launches])
        for launch in launches:
            allowed = FLOAT_CONSTEXPR_ALLOWED.get(launch.name, {})
            floats = [
                name
                for name, value in launch.bound().items()
                if isinstance(value, float) and _is_constexpr(launch.fn, name)
            ]
            assert set(floats) <= set(allowed), f"{launch.name}: float constexprs {floats}"
    assert runs[0] == runs[1]
    assert {key[0] for key in runs[0]} >= {"_bias_act_kernel", "_upfirdn2d_kernel"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_launch_runs_on_the_input_device(launches, gpu_plans, dtype, channels_last):
    """Every launch of every op (forward, backward, double backward; every plan) happens
    inside a device guard for the input's device, here cuda:1 without set_device."""
    for shape in SHAPES:
        _run_every_op(shape, dtype, channels_last, SCALARS[0])
    unguarded = sorted({launch.name for launch in launches if launch.device != 1})
    assert not unguarded, f"launched outside a cuda:1 guard: {unguarded}"
    missing = KERNELS - {launch.name for launch in launches}
    assert not missing, f"not launched: {missing}"


def test_the_device_guard_follows_the_tensor(monkeypatch):
    """cuda_index reads the tensor's device; on_device enters torch.cuda.device(index) for a
    CUDA tensor and nothing for a CPU one (including one posing as CUDA)."""
    fake = types.SimpleNamespace(device=torch.device("cuda", 3))
    assert tl_launch.cuda_index(fake) == 3
    assert tl_launch.cuda_index(torch.zeros(1)) is None
    entered = []
    monkeypatch.setattr(torch.cuda, "device", lambda index: entered.append(index) or _Null())
    with tl_launch.on_device(fake):
        pass
    with tl_launch.on_device(torch.zeros(1)):
        pass
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    with tl_launch.on_device(torch.zeros(1)):
        pass
    assert entered == [3]


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- occupancy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "regs,warps,shared,expected",
    [
        (255, 8, 0, 1),  # 256 x 256 threads = 65536: the whole register file
        (128, 8, 0, 2),
        (129, 8, 0, 1),  # allocated in 8-register steps: 136 x 256 x 2 > 65536
        (64, 8, 0, 4),
        (255, 4, 0, 2),
        (32, 4, 0, 16),  # threads: 2048 / 128
        (16, 1, 0, 32),  # block slots
        (32, 4, 100 * 1024, 2),  # shared memory: 228 KiB / (100 KiB + 1 KiB reserved)
        (32, 4, 120 * 1024, 1),
    ],
)
def test_resident_programs(regs, warps, shared, expected):
    assert tl_launch.resident_programs(regs, warps, shared, tl_launch.SM90) == expected


def test_resident_programs_uses_the_device_limits():
    small = tl_launch.SMLimits(sms=20, regs=32768, threads=1024, shared=65536, programs=16)
    assert tl_launch.resident_programs(64, 4, 0, small) == 4  # 32768 / (64 x 128)
    assert tl_launch.resident_programs(16, 4, 0, small) == 8  # 1024 threads / 128
    assert tl_launch.resident_programs(16, 1, 0, small) == 16  # block slots
    assert tl_launch.resident_programs(16, 1, 20000, small) == 3  # 65536 / 21024


def test_programs_per_sm_compiles_once_per_specialization(monkeypatch):
    """On a GPU: the specialization is compiled (warmup, on the tensor's device), its
    registers, warps and shared memory give the programs per SM, cached per specialization
    and device. Without a GPU (the interpreter, tensors posing as CUDA): the default."""
    import triton

    def body(x_ptr, n, BLOCK: triton.language.constexpr):
        pass

    kernel = triton.runtime.jit.JITFunction(body)
    warmups, guards = [], []

    def warmup(*args, grid, **kwargs):
        warmups.append((args, kwargs))
        regs = 96 if kwargs["BLOCK"] == 1024 else 200
        metadata = types.SimpleNamespace(num_warps=kwargs["num_warps"], shared=0)
        return types.SimpleNamespace(n_regs=regs, metadata=metadata)

    monkeypatch.setattr(kernel, "warmup", warmup)
    x = torch.zeros(4)
    assert tl_launch.programs_per_sm(kernel, x, x, 4, BLOCK=1024, num_warps=8) == (
        tl_launch.DEFAULT_PROGRAMS_PER_SM
    )
    assert not warmups  # no GPU: nothing compiled
    monkeypatch.setattr(tl_launch, "INTERPRETING", False)
    monkeypatch.setattr(tl_launch, "cuda_index", lambda t: 2)
    monkeypatch.setattr(tl_launch, "_device_limits", lambda index: tl_launch.SM90)
    monkeypatch.setattr(torch.cuda, "device", lambda index: guards.append(index) or _Null())
    monkeypatch.setattr(tl_launch, "_OCCUPANCY", {})
    assert tl_launch.programs_per_sm(kernel, x, x, 4, BLOCK=1024, num_warps=8) == 2  # 96 regs
    assert tl_launch.programs_per_sm(kernel, x, x, 7, BLOCK=1024, num_warps=8) == 2
    assert len(warmups) == 1 and guards == [2]  # cached: 4 and 7 specialise alike
    assert tl_launch.programs_per_sm(kernel, x, x, 16, BLOCK=1024, num_warps=8) == 2
    assert len(warmups) == 2  # a multiple of 16 is another specialization
    assert tl_launch.programs_per_sm(kernel, x, x, 4, BLOCK=2048, num_warps=4) == 2  # 200 regs
    assert len(warmups) == 3


def _split(launch: Launch):
    """(kept_blocks, summed_tiles, groups, tiles_per_program) of a reduction launch."""
    a = launch.bound()
    cdiv = lambda p, q: -(-p // q)  # noqa: E731
    if launch.name == "_bias_act_kernel":
        rows, cols = cdiv(a["rows"], a["BLOCK_R"]), cdiv(a["cols"], a["BLOCK_C"])
        kept, summed = (cols, rows) if a["CHANNEL_IN_COLS"] else (rows, cols)
    elif a["CHANNELS_LAST"]:  # _noise_bwd_kernel
        kept, summed = cdiv(a["channels"], a["BLOCK_CH"]), cdiv(a["pixel_rows"], a["BLOCK_P"])
    else:
        kept = a["batch"] * cdiv(a["pixels"], a["BLOCK_P"])
        summed = cdiv(a["channels"], a["BLOCK_CH"])
    return kept, summed, a["groups"], a["tiles_per_program"]


@pytest.mark.parametrize("programs_per_sm", [2, 3, 5])
@pytest.mark.parametrize("channels_last", [False, True])
def test_grids_are_one_wave_of_the_compiled_kernel(
    launches, gpu_plans, monkeypatch, programs_per_sm, channels_last
):
    """The reduction grids (bias_act's and noise_injection's sums, upfirdn2d's row bands, the
    plane-norm sweep) follow the programs per SM the compiled kernel allows."""
    from stylegan_fast.ops import _triton_partials
    from stylegan_fast.ops._plane_norm import plans as plane_norm_plans

    asked = []

    def occupancy(kernel, like, *args, **kwargs):
        asked.append(kernel.fn.__name__)
        return programs_per_sm

    monkeypatch.setattr(tl_launch, "programs_per_sm", occupancy)
    wave = programs_per_sm * SMS
    _run_every_op((8, 32, 64, 64), torch.float32, channels_last, SCALARS[0])
    # Planes the sweep plan takes, more of them than a wave holds.
    sweep_shape = (16, 512, 32, 32) if channels_last else (1, 512, 128, 128)
    _run_every_op(sweep_shape, torch.float16, channels_last, SCALARS[0])
    checked = set()
    for launch in launches:
        a = launch.bound()
        if launch.name in ("_bias_act_kernel", "_noise_bwd_kernel") and (
            a.get("COMPUTE_DB", True) and launch.grid[0] > 1
        ):
            kept, summed, groups, tiles = _split(launch)
            assert (tiles, groups) == _triton_partials.split_reduction(kept, summed, wave)
            assert launch.grid == (kept * groups,)
            checked.add(launch.name)
        if launch.name == "_upfirdn2d_kernel":
            bands, rows = a["row_bands"], a["base_rows"]
            programs = launch.grid[0] // bands
            assert bands == max(1, min(-(-wave // programs), -(-rows // 16)))
            checked.add(launch.name)
        if launch.name in ("_forward_one_pass", "_backward_one_pass") and a["SWEEP"]:
            x = a["x_ptr"]
            tensors = 1 if launch.name == "_forward_one_pass" else 2
            block_c = a["BLOCK_C"]
            swept = block_c * a["HW"] * x.element_size() * tensors
            by_l2 = int(tl_launch.SM90.l2_bytes * plane_norm_plans._L2_SHARE) // (SMS * swept)
            resident = min(programs_per_sm, max(1, by_l2))
            assert launch.grid == (min(a["row_blocks"], resident * SMS),)
            checked.add(launch.name)
    assert checked == {
        "_bias_act_kernel",
        "_noise_bwd_kernel",
        "_upfirdn2d_kernel",
        "_forward_one_pass",
        "_backward_one_pass",
    }
    assert {"_bias_act_kernel", "_noise_bwd_kernel", "_upfirdn2d_kernel"} <= set(asked)


def test_float32_split():
    for value in (0.2, 2**0.5, 1e-8, -3.0e-30, 1.0, 256.0, 0.0):
        hi, lo = tl_launch.float32_split(value)
        assert torch.tensor(hi, dtype=torch.float32).item() == hi
        assert torch.tensor(lo, dtype=torch.float32).item() == lo
        assert abs((hi + lo) - value) <= abs(value) * 2.0**-47
        assert torch.tensor(hi + lo, dtype=torch.float32).item() == hi  # fp32 sums to hi
    assert tl_launch.float32_split(float("inf")) == (float("inf"), 0.0)
    assert tl_launch.float32_split(float("-inf")) == (float("-inf"), 0.0)
    hi, lo = tl_launch.float32_split(float("nan"))
    assert hi != hi and hi + lo != hi + lo
    assert tl_launch.float32_split(1e300) == (float("inf"), 0.0)
