"""bias_act: reference vs first principles, gradcheck/gradgradcheck, opcheck, backend parity
(forward, backward, R1) over dtypes/shapes/layouts, compile, bad input."""

import math

import pytest
import torch

from stylegan_fast import FallbackWarning, _backend, testing
from stylegan_fast.ops import bias_act
from stylegan_fast.ops.bias_act import ACTIVATIONS, registration

OP = "bias_act"
CPU_IMPLS = testing.implemented_backends(OP, "cpu")
KERNEL_IMPLS = [i for i in CPU_IMPLS if i != "ref"]
ACTS = sorted(ACTIVATIONS)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def first_principles(v: float, act: str, alpha: float) -> float:
    """Each activation from its textbook formula, one Python float at a time."""
    sig = 1 / (1 + math.exp(-v))
    return {
        "linear": v,
        "relu": max(v, 0.0),
        "lrelu": v if v > 0 else alpha * v,
        "tanh": (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1),
        "sigmoid": sig,
        "elu": v if v > 0 else alpha * (math.exp(v) - 1),
        "selu": SELU_SCALE * (v if v > 0 else SELU_ALPHA * (math.exp(v) - 1)),
        "softplus": v if v > 20 else math.log(1 + math.exp(v)),
        "swish": v * sig,
    }[act]


def naive_bias_act(x, b, dim, act, alpha, gain, clamp):
    out = torch.empty_like(x)
    for idx in torch.cartesian_prod(*[torch.arange(s) for s in x.shape]).reshape(-1, x.ndim):
        idx = tuple(idx.tolist())
        v = x[idx].item() + (b[idx[dim]].item() if b is not None else 0.0)
        y = first_principles(v, act, alpha) * gain
        if clamp is not None:
            y = min(max(y, -clamp), clamp)
        out[idx] = y
    return out


def call(impl, act="lrelu", dim=1, **kw):
    return lambda x, b: bias_act(x, b, dim=dim, act=act, impl=impl, **kw)


def fast_gradcheck(impl):
    """Under TRITON_INTERPRET=1 a kernel launch costs tens of ms, and a full gradgradcheck
    launches ~1000 of them: the Triton backend checks a random projection of the Jacobian
    instead (gradcheck's fast mode, a handful of launches). Its gradients are also compared
    element by element with the float64 reference in the parity tests below."""
    return impl == "triton"


# --- reference vs first principles (float64) -------------------------------------------------


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_reference_matches_first_principles(act, dim, rng):
    x = testing.make_tensor([3, 4, 5], torch.float64, generator=rng, scale=2)
    b = testing.make_tensor([x.shape[dim]], torch.float64, generator=rng)
    spec = ACTIVATIONS[act]
    for alpha, gain, clamp in [(None, None, None), (0.3, 1.7, 0.9)]:
        a = spec.default_alpha if alpha is None else alpha
        g = spec.default_gain if gain is None else gain
        expected = naive_bias_act(x, b, dim, act, a, g, clamp)
        out = bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl="ref")
        testing.assert_close(out, expected, what=f"{act} dim={dim}")


def test_defaults_follow_nvlabs():
    assert ACTIVATIONS["lrelu"].default_alpha == 0.2
    assert ACTIVATIONS["lrelu"].default_gain == pytest.approx(math.sqrt(2))
    assert ACTIVATIONS["relu"].default_gain == pytest.approx(math.sqrt(2))
    assert ACTIVATIONS["linear"].default_gain == 1
    # NVlabs' table: sqrt(2) for relu, lrelu and swish, 1 for every other activation.
    for act, spec in ACTIVATIONS.items():
        expected = math.sqrt(2) if act in ("relu", "lrelu", "swish") else 1.0
        assert spec.default_gain == pytest.approx(expected), act
    assert ACTIVATIONS["elu"].default_alpha == 1.0
    x = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(
        bias_act(x, act="lrelu", dim=0), torch.tensor([-0.2, 2.0]).double() * 2**0.5
    )


# --- gradcheck / gradgradcheck --------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("act", ACTS)
def test_gradcheck_and_gradgradcheck(impl, act, rng):
    testing.require_backend(OP, impl, "cpu")
    x = testing.make_tensor([2, 3, 4, 5], torch.float64, generator=rng, requires_grad=True)
    b = testing.make_tensor([3], torch.float64, generator=rng, requires_grad=True)
    # Keep inputs away from the kinks (relu/lrelu at 0, clamp edges): finite differences
    # straddling a kink are not a derivative.
    with torch.no_grad():
        x += 0.05 * torch.sign(x + b.view(1, -1, 1, 1))
    fast = fast_gradcheck(impl)
    for clamp in [None, 1.3]:
        fn = call(impl, act=act, clamp=clamp)
        assert torch.autograd.gradcheck(fn, (x, b), fast_mode=fast)
        assert torch.autograd.gradgradcheck(fn, (x, b), fast_mode=fast)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_gradcheck_other_dims_and_no_bias(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    fast = fast_gradcheck(impl)
    x = testing.make_tensor([3, 4, 6], torch.float64, generator=rng, requires_grad=True)
    for dim in [0, 2, -1]:
        b = testing.make_tensor([x.shape[dim]], torch.float64, generator=rng, requires_grad=True)
        fn = call(impl, act="swish", dim=dim, gain=0.7)
        assert torch.autograd.gradcheck(fn, (x, b), fast_mode=fast)
        assert torch.autograd.gradgradcheck(fn, (x, b), fast_mode=fast)
    fn = lambda x: bias_act(x, None, act="tanh", impl=impl)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=fast)


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("act", ["lrelu", "softplus"])
def test_third_order_matches_reference(impl, act, rng):
    """The kernels serve two orders; every higher one goes through the reference."""
    testing.require_backend(OP, impl, "cpu")
    x = testing.make_tensor([2, 3, 4], torch.float64, generator=rng, requires_grad=True)
    b = testing.make_tensor([3], torch.float64, generator=rng, requires_grad=True)

    def third(impl_):
        y = bias_act(x, b, act=act, impl=impl_)
        (g1,) = torch.autograd.grad((y * y).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad((g1 * g1).sum(), x, create_graph=True)
        return torch.autograd.grad((g2 * x).sum(), (x, b), allow_unused=True)

    for got, want in zip(third(impl), third("ref")):
        if want is None:
            assert got is None or torch.count_nonzero(got) == 0
        else:
            testing.assert_close(got, want, what="third-order gradient")


# --- opcheck of the registered ops ------------------------------------------------------------


def _kernels(impl):
    return registration.OP.kernels(impl)


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(impl, layout, dtype, rng):
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    x = testing.make_tensor([2, 5, 3, 4], dtype, layout=layout, generator=rng, requires_grad=True)
    b = testing.make_tensor([5], dtype, generator=rng, requires_grad=True)
    dy = testing.make_tensor([2, 5, 3, 4], dtype, layout=layout, generator=rng)
    # The aot_dispatch utilities (~1-2 s a call, nearly all of it tracing) check the autograd
    # and fake registration that both backends share; under the interpreter the Triton backend
    # runs them on one call per op, and the kernel-specific checks (schema, fake vs real
    # shapes and strides, autograd registration) on every call.
    light = None
    if impl == "triton":
        light = ("test_schema", "test_faketensor", "test_autograd_registration")
    for i, (act, clamp) in enumerate([("lrelu", None), ("tanh", 0.5)]):
        utils = light if i > 0 else None
        opcheck(kernels.fwd, (x, b, 1, act, 0.2, 1.4, clamp), utils)
        opcheck(kernels.fwd, (x, None, 0, act, 0.2, 1.4, clamp), light)
        opcheck(kernels.bwd, (dy, x, b, 1, act, 0.2, 1.4, clamp, True), utils)
        opcheck(kernels.bwd, (dy, x, b, 1, act, 0.2, 1.4, clamp, False), light)


def opcheck(op, args, test_utils):
    if test_utils is None:
        torch.library.opcheck(op, args)
    else:
        torch.library.opcheck(op, args, test_utils=test_utils)


# --- parity of every backend against the float64 reference ------------------------------------

SHAPES = [
    ([1, 7, 5, 3], 1),  # N = 1, odd C, H != W
    ([3, 6, 10, 6], 1),  # H*W not a power of two
    ([5, 9], 1),  # a linear layer's [N, C]
    ([2, 3, 4, 5], 3),  # bias along the last axis
]


def _inputs(shape, dim, dtype, layout, rng, bias=True, act=None, clamp=None, alpha=None):
    x = testing.make_tensor(shape, dtype, layout=layout, generator=rng, scale=2, requires_grad=True)
    b = (
        testing.make_tensor([shape[dim]], dtype, generator=rng, requires_grad=True)
        if bias
        else None
    )
    if clamp is not None:
        # Keep outputs off the clamp edge: whether an element within rounding of the edge is
        # clamped depends on the precision the output is computed in (the eager reference
        # rounds to fp16/bf16 before clamping), and its gradient flips with it.
        with torch.no_grad():
            pre = bias_act(
                x.double(), None if b is None else b.double(), dim=dim, act=act, alpha=alpha
            )
            near = (pre.abs() - clamp).abs() < 0.05 * clamp
            x.masked_fill_(near, 0.0)
    return x, b


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape,dim", SHAPES)
@pytest.mark.parametrize("act,clamp", [("lrelu", None), ("tanh", 0.8), ("linear", None)])
def test_parity_forward_backward(impl, dtype, layout, shape, dim, act, clamp, rng):
    testing.require_backend(OP, impl, "cpu")
    # The eager reference rounds after each step in low precision; kernels round once.
    slack = 2.0 if impl == "ref" else 1.0
    x, b = _inputs(shape, dim, dtype, layout, rng, act=act, clamp=clamp)
    dy = testing.make_tensor(shape, dtype, generator=rng)
    fn = call(impl, act=act, dim=dim, clamp=clamp)
    out, (dx, db) = testing.forward_backward(fn, (x, b), dy)
    x64, b64 = testing.to_float64((x, b))
    ref, (dx64, db64) = testing.forward_backward(
        call("ref", act=act, dim=dim, clamp=clamp), (x64, b64), dy.double()
    )
    assert out.dtype == dtype and out.shape == x.shape
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y", slack)
    testing.assert_close(dx, dx64, dtype, "dx", slack)
    # db sums over many elements: allow the summation's own rounding.
    testing.assert_close(db, db64, dtype, "db", slack * 2)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("act", ACTS)
def test_parity_every_activation(impl, act, rng):
    testing.require_backend(OP, impl, "cpu")
    x, b = _inputs(
        [2, 5, 4, 3], 1, torch.float32, "channels_last", rng, act=act, clamp=1.1, alpha=0.3
    )
    dy = testing.make_tensor(x.shape, torch.float32, generator=rng)
    fn = call(impl, act=act, clamp=1.1, alpha=0.3)
    out, grads = testing.forward_backward(fn, (x, b), dy)
    ref, grads64 = testing.forward_backward(
        call("ref", act=act, clamp=1.1, alpha=0.3), testing.to_float64((x, b)), dy.double()
    )
    testing.assert_close(out, ref, what="y")
    for g, g64, name in zip(grads, grads64, ("dx", "db")):
        testing.assert_close(g, g64, what=name)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("act", ["lrelu", "softplus"])
def test_parity_r1_pattern(impl, dtype, layout, act, rng):
    testing.require_backend(OP, impl, "cpu")
    x, b = _inputs([2, 5, 6, 3], 1, dtype, layout, rng)
    grads = testing.r1_pattern(call(impl, act=act), (x, b))
    grads64 = testing.r1_pattern(call("ref", act=act), testing.to_float64((x, b)))
    # Low precision: the loss itself is built from rounded outputs and gradients.
    slack = 1.0 if dtype in (torch.float32, torch.float64) else 4.0
    for g, g64, name in zip(grads, grads64, ("dx", "db")):
        testing.assert_close(g, g64, dtype, f"R1 {name}", slack)


def test_r1_second_order_spreads_no_zero_bias_gradient(rng):
    """R1's double backward asks for no db: the *_bwd op's backward must get None for it, not
    a materialised zero spread over a full-size tensor (one needless full-size add kernel per
    bias_act layer of D, as the Triton path did before ctx.set_materialize_grads(False))."""
    from torch.utils._python_dispatch import TorchDispatchMode

    x = testing.make_tensor([2, 4, 6, 6], torch.float32, generator=rng, requires_grad=True)
    b = testing.make_tensor([4], torch.float32, generator=rng, requires_grad=True)
    impl = "triton" if "triton" in _backend.available_backends(OP, "cpu") else "cpp"
    y = bias_act(x, b, act="lrelu", impl=impl)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)

    class FullSizeAdds(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket.__name__ == "add" and out.numel() == x.numel():
                FullSizeAdds.count += 1
            return out

    with FullSizeAdds():
        g.square().sum().backward()
    assert FullSizeAdds.count == 0


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("act", ["relu", "lrelu", "tanh", "elu", "softplus"])
def test_nan_and_inf_propagate_like_reference(impl, act, rng):
    testing.require_backend(OP, impl, "cpu")
    x, b = _inputs([2, 4, 3, 3], 1, torch.float32, "contiguous", rng)
    with torch.no_grad():
        x[0, 1, 0, 0] = float("nan")
        x[1, 2, 1, 1] = float("inf")
        x[1, 3, 2, 0] = -float("inf")
    dy = testing.make_tensor(x.shape, torch.float32, generator=rng)
    dy[0, 0, 1, 1] = float("nan")
    for clamp in [None, 2.0]:
        out, grads = testing.forward_backward(call(impl, act=act, clamp=clamp), (x, b), dy)
        ref, grads64 = testing.forward_backward(
            call("ref", act=act, clamp=clamp), testing.to_float64((x, b)), dy.double()
        )
        testing.assert_close(out, ref, what="y with NaN/Inf inputs")
        testing.assert_close(grads[0], grads64[0], what="dx with NaN/Inf inputs")


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_empty_tensors(impl):
    testing.require_backend(OP, impl, "cpu")
    x = torch.empty(0, 3, 4, 4, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    y = bias_act(x, b, act="lrelu", impl=impl)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert torch.equal(b.grad, torch.zeros(3))


# --- Triton: the GPU launch structure, under the interpreter, and on a GPU -------------------

# Tiles of 16 elements at most 4 wide, and reductions split for 6 programs (2 SMs x 3 resident
# programs): a test tensor then spans many tiles, several programs per bias channel and the
# partial-sum kernel.
SMALL_TILES = dict(tile=16, max_cols=4, sms=2, num_warps=1, sum_kernel=True)
SMALL_TILES_PROGRAMS_PER_SM = 3


@pytest.mark.parametrize(
    "shape,dim,layout",
    [
        ([2, 5, 6, 3], 1, "contiguous"),  # channel per row, sums over rows and tiles
        ([2, 5, 6, 3], 1, "channels_last"),  # channel per column
        ([1, 6, 3, 7], 1, "noncontiguous"),  # copied; one sample: a single row per channel
        ([3, 4, 9], 2, "contiguous"),  # bias along the last axis
        ([4, 5], 1, "contiguous"),  # a linear layer's [N, C]
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_multi_tile_launches_match_reference(shape, dim, layout, dtype, rng, monkeypatch):
    """The CPU launcher covers a test tensor with one tile; GPU launches split it into many
    tiles, loop over several per program, split db's sums over programs and add the partials
    with their own kernel. Those paths, forced small, against the float64 reference."""
    testing.require_backend(OP, "triton", "cpu")
    from stylegan_fast.ops import _triton_partials

    config = _triton_partials.LaunchConfig(**SMALL_TILES)
    monkeypatch.setattr(_triton_partials, "launch_config", lambda t: config)
    monkeypatch.setattr(
        _triton_partials.tl_launch, "programs_per_sm", lambda *a, **k: SMALL_TILES_PROGRAMS_PER_SM
    )
    # float64 also takes the int64-index path of tensors with 2**31 elements or more.
    wide_index = dtype == torch.float64
    monkeypatch.setattr(_triton_partials, "needs_int64_index", lambda *numels: wide_index)
    for act, clamp in [("lrelu", None), ("softplus", 1.1)]:
        x, b = _inputs(shape, dim, dtype, layout, rng, act=act, clamp=clamp)
        dy = testing.make_tensor(shape, dtype, layout=layout, generator=rng)
        fn = call("triton", act=act, dim=dim, clamp=clamp)
        out, (dx, db) = testing.forward_backward(fn, (x, b), dy)
        ref, (dx64, db64) = testing.forward_backward(
            call("ref", act=act, dim=dim, clamp=clamp), testing.to_float64((x, b)), dy.double()
        )
        testing.assert_close(out, ref, dtype, f"{act} y")
        testing.assert_close(dx, dx64, dtype, f"{act} dx")
        testing.assert_close(db, db64, dtype, f"{act} db", slack=2)
    no_bias = bias_act(x, None, act="swish", impl="triton")
    testing.assert_close(no_bias, bias_act(x.double(), None, act="swish", impl="ref"), dtype)


# StyleGAN's synthesis layers as (C, H = W), at N = 2.
STYLEGAN_LAYERS = [(512, 8), (512, 32), (512, 64), (256, 128), (128, 256), (64, 512), (32, 1024)]
GPU_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", GPU_DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("channels,size", STYLEGAN_LAYERS)
def test_cuda_triton_parity_stylegan_layers(channels, size, layout, dtype):
    """impl='triton' on CUDA tensors vs the float64 reference: forward, backward (dx, db),
    the R1 pattern, and bitwise-equal results on a second run (no atomics)."""
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(channels * size)
    shape = [2, channels, size, size]
    x, b = _inputs(shape, 1, dtype, layout, rng)
    x, b = (t.detach().cuda().requires_grad_(True) for t in (x, b))
    dy = testing.make_tensor(shape, dtype, "cuda", layout, rng)
    out, (dx, db) = testing.forward_backward(call("triton"), (x, b), dy)
    ref, (dx64, db64) = testing.forward_backward(
        call("ref"), testing.to_float64((x, b)), dy.double()
    )
    assert testing.is_layout(out, layout) and testing.is_layout(dx, layout)
    testing.assert_close(out, ref, dtype, "y")
    testing.assert_close(dx, dx64, dtype, "dx")
    # db sums N*H*W (up to 2M) terms: allow the summation's own rounding.
    testing.assert_close(db, db64, dtype, "db", slack=2)
    again, (dx_again, db_again) = testing.forward_backward(call("triton"), (x, b), dy)
    assert torch.equal(out, again) and torch.equal(dx, dx_again) and torch.equal(db, db_again)
    del ref, dx64, db64, again, dx_again
    if size <= 256:
        grads = testing.r1_pattern(call("triton"), (x, b))
        grads64 = testing.r1_pattern(call("ref"), testing.to_float64((x, b)))
        slack = 1.0 if dtype == torch.float32 else 4.0
        for g, g64, name in zip(grads, grads64, ("dx", "db")):
            testing.assert_close(g, g64, dtype, f"R1 {name}", slack * (2 if name == "db" else 1))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", GPU_DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_cuda_triton_every_activation(act, dtype):
    """The smooth activations use the GPU's exp/log (fast approximations in fp32): within
    the same tolerance as every other kernel, clamp and all, in both layouts."""
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(len(act))
    for layout in ["contiguous", "channels_last"]:
        x, b = _inputs([3, 40, 12, 12], 1, dtype, layout, rng, act=act, clamp=1.1, alpha=0.3)
        x, b = (t.detach().cuda().requires_grad_(True) for t in (x, b))
        dy = testing.make_tensor(x.shape, dtype, "cuda", layout, rng)
        fn = call("triton", act=act, clamp=1.1, alpha=0.3)
        out, (dx, db) = testing.forward_backward(fn, (x, b), dy)
        ref, (dx64, db64) = testing.forward_backward(
            call("ref", act=act, clamp=1.1, alpha=0.3), testing.to_float64((x, b)), dy.double()
        )
        testing.assert_close(out, ref, dtype, f"{layout} y")
        testing.assert_close(dx, dx64, dtype, f"{layout} dx")
        testing.assert_close(db, db64, dtype, f"{layout} db", slack=2)


@pytest.mark.cuda
def test_cuda_triton_compile_fullgraph_matches_eager():
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(0)
    x, b = _inputs([2, 64, 16, 16], 1, torch.float16, "channels_last", rng)
    x, b = (t.detach().cuda().requires_grad_(True) for t in (x, b))

    def layer(x, b):
        return bias_act(x, b, act="lrelu", clamp=256.0, impl="triton").float().square().mean()

    compiled = torch.compile(layer, fullgraph=True)
    got, got_grads = testing.forward_backward(compiled, (x, b), torch.tensor(1.0, device="cuda"))
    want, want_grads = testing.forward_backward(layer, (x, b), torch.tensor(1.0, device="cuda"))
    testing.assert_close(got, want.double(), torch.float32, "compiled output")
    for g, w in zip(got_grads, want_grads):
        testing.assert_close(g, w.double(), torch.float16, "compiled gradient")


# --- torch.compile ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_compile_fullgraph_matches_eager(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    x, b = _inputs([2, 6, 5, 4], 1, torch.float32, "contiguous", rng)

    def layer(x, b):
        return bias_act(x, b, act="lrelu", impl=impl).square().mean()

    compiled = torch.compile(layer, fullgraph=True)
    got, got_grads = testing.forward_backward(compiled, (x, b), torch.tensor(1.0))
    want, want_grads = testing.forward_backward(layer, (x, b), torch.tensor(1.0))
    testing.assert_close(got, want.double(), what="compiled output")
    for g, w in zip(got_grads, want_grads):
        testing.assert_close(g, w.double(), what="compiled gradient")


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        bias_act([1.0, 2.0])
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        bias_act(torch.ones(2, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"b must have shape \[x.shape\[1\]\] = \[3\]"):
        bias_act(x, torch.randn(4))
    with pytest.raises(ValueError, match="b must have 1 dimensions"):
        bias_act(x, torch.randn(1, 3))
    with pytest.raises(TypeError, match=r"b must have the dtype of x \(torch.float32\)"):
        bias_act(x, torch.randn(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="b is on meta but x is on cpu"):
        bias_act(x, torch.randn(3, device="meta"))
    with pytest.raises(ValueError, match="dim must be in"):
        bias_act(x, torch.randn(3), dim=4)
    with pytest.raises(ValueError, match="act must be one of"):
        bias_act(x, act="gelu")
    with pytest.raises(ValueError, match="clamp must be None or >= 0"):
        bias_act(x, clamp=-1)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        bias_act(x, act="lrelu", alpha="0.2")
    with pytest.raises(ValueError, match="impl must be one of"):
        bias_act(x, impl="fast")


def test_unavailable_impl_lists_every_backend_reason():
    x = torch.randn(2, 3)
    with pytest.raises(NotImplementedError) as info:
        bias_act(x, impl="cuda")
    message = str(info.value)
    assert "impl='cuda' cannot serve these inputs (cpu tensors): runs CUDA tensors only" in message
    for backend in _backend.BACKENDS:
        assert f"  {backend}: " in message


def test_env_variable_selects_impl(monkeypatch):
    x = torch.randn(2, 3)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_BIAS_ACT", "cuda")
    with pytest.raises(NotImplementedError, match="impl='cuda'"):
        bias_act(x)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_BIAS_ACT", "ref")
    monkeypatch.setenv("STYLEGAN_FAST_IMPL", "cuda")
    assert torch.equal(bias_act(x), x)  # the per-op variable wins


def test_auto_fallback_warns_once(monkeypatch):
    monkeypatch.setitem(_backend._STATIC_REASONS, (OP, "cpp", "cpu"), "pretend it is missing")
    monkeypatch.setattr(_backend, "_WARNED", set())
    x = torch.randn(2, 3)
    with pytest.warns(FallbackWarning, match="uses impl='ref'.*pretend it is missing"):
        bias_act(x)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bias_act(x)  # a second call stays quiet
