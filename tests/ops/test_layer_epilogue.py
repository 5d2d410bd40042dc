"""layer_epilogue: reference vs first principles, gradcheck/gradgradcheck, opcheck, backend
parity (forward, backward, R1) over dtypes/shapes/layouts and optional inputs, statistics of a
plane with a large mean, NaN/Inf, empty tensors, seeded noise, compile, bad input."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from stylegan_fast import FallbackWarning, _backend, testing
from stylegan_fast.ops import layer_epilogue
from stylegan_fast.ops.layer_epilogue import reference, registration

OP = "layer_epilogue"
CPU_IMPLS = testing.implemented_backends(OP, "cpu")
KERNEL_IMPLS = [i for i in CPU_IMPLS if i != "ref"]
NAMES = ("x", "noise", "noise_strength", "bias", "scale", "style_bias")

# (noise: "batch" [N,1,H,W] | "shared" [1,1,H,W] | None, with bias): every optional-input
# combination. noise None here means noise_strength None too (no noise term).
OPTIONALS = [
    (noise, with_bias) for noise, with_bias in itertools.product(["batch", "shared", None], [1, 0])
]


def make_inputs(
    shape,
    dtype=torch.float64,
    layout="contiguous",
    rng=None,
    noise="batch",
    with_bias=True,
    requires_grad=True,
    x_scale=2.0,
):
    """(x, noise, noise_strength, bias, scale, style_bias) for ``shape = [N, C, H, W]``."""
    n, c, h, w = shape

    def make(s, layout="contiguous", scale=1.0):
        return testing.make_tensor(
            s, dtype, layout=layout, generator=rng, scale=scale, requires_grad=requires_grad
        )

    x = make(shape, layout, x_scale)
    noise_t = make([n if noise == "batch" else 1, 1, h, w]) if noise is not None else None
    strength = make([c]) if noise is not None else None
    bias = make([c]) if with_bias else None
    return x, noise_t, strength, bias, make([n, c]), make([n, c])


def call(impl, **kw):
    return lambda *inputs: layer_epilogue(*inputs, impl=impl, **kw)


def first_principles(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps):
    """Noise and bias broadcast by hand, then torch's own leaky_relu and instance_norm and the
    explicit affine: independent of the reference's code path. float64 in, float64 out."""
    n, c, h, w = x.shape
    t = x.clone()
    if noise_strength is not None:
        full_noise = noise.expand(n, 1, h, w)
        for ch in range(c):
            t[:, ch] = t[:, ch] + noise_strength[ch] * full_noise[:, 0]
    if bias is not None:
        for ch in range(c):
            t[:, ch] = t[:, ch] + bias[ch]
    u = F.leaky_relu(t, alpha) * gain
    u_hat = F.instance_norm(u, eps=eps)
    return scale[:, :, None, None] * u_hat + style_bias[:, :, None, None]


def away_from_kink(inputs, margin=0.05):
    """Moves x so that the leaky ReLU's input is at least ``margin`` from 0: finite
    differences straddling the kink are not a derivative."""
    x, noise, strength, bias = inputs[:4]
    with torch.no_grad():
        v = x.clone()
        if strength is not None:
            v += strength.reshape(1, -1, 1, 1) * noise
        if bias is not None:
            v += bias.reshape(1, -1, 1, 1)
        x += margin * torch.sign(v)
    return inputs


# --- reference vs first principles (float64) -------------------------------------------------


@pytest.mark.parametrize("noise,with_bias", OPTIONALS)
def test_reference_matches_first_principles(noise, with_bias, rng):
    inputs = make_inputs([3, 5, 4, 6], rng=rng, noise=noise, with_bias=with_bias)
    for alpha, gain, eps in [(0.2, math.sqrt(2), 1e-8), (0.05, 0.7, 0.3)]:
        expected = first_principles(*inputs, alpha, gain, eps)
        out = layer_epilogue(*inputs, alpha=alpha, gain=gain, eps=eps, impl="ref")
        testing.assert_close(out, expected, what=f"noise={noise} bias={with_bias} eps={eps}")


def test_defaults_follow_stylegan():
    """alpha 0.2, gain sqrt(2), eps 1e-8: one plane worked out by hand."""
    x = torch.tensor([[[[-1.0, 3.0]]]], dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    u = torch.tensor([-0.2, 3.0], dtype=torch.float64) * math.sqrt(2)
    expected = (u - u.mean()) / torch.sqrt(((u - u.mean()) ** 2).mean() + 1e-8)
    for impl in CPU_IMPLS:
        out = layer_epilogue(x, None, None, None, 2 * one, one, impl=impl)
        testing.assert_close(out.flatten(), 2 * expected + 1, what=impl)


# --- gradcheck / gradgradcheck --------------------------------------------------------------

# The full Jacobians call the kernels twice per input element (~800 calls here), ~15-40 ms
# each under the Triton interpreter: the triton cases check random projections of them
# (fast_mode, a few calls per input tensor); the parity tests compare every gradient element.
FAST_GRADCHECK = {impl: impl == "triton" for impl in CPU_IMPLS}


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("noise,with_bias", OPTIONALS)
def test_gradcheck_and_gradgradcheck(impl, noise, with_bias, rng):
    testing.require_backend(OP, impl, "cpu")
    inputs = away_from_kink(make_inputs([2, 3, 3, 4], rng=rng, noise=noise, with_bias=with_bias))
    fn = call(impl, alpha=0.3, gain=1.3, eps=0.05)
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=FAST_GRADCHECK[impl])
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=FAST_GRADCHECK[impl])


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_gradgradcheck_subsets_of_inputs(impl, rng):
    """Second order when only some inputs require grad (output_mask partly False)."""
    testing.require_backend(OP, impl, "cpu")
    full = away_from_kink(make_inputs([2, 3, 3, 4], rng=rng))
    fn = call(impl, eps=0.05)
    for wanted in [("x",), ("noise", "scale"), ("noise_strength", "bias", "style_bias")]:
        inputs = [t.detach().requires_grad_(name in wanted) for name, t in zip(NAMES, full)]
        assert torch.autograd.gradcheck(fn, inputs, fast_mode=FAST_GRADCHECK[impl])
        assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=FAST_GRADCHECK[impl])


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_third_order_matches_reference(impl, rng):
    """The kernels serve two orders; every higher one goes through the reference."""
    testing.require_backend(OP, impl, "cpu")
    inputs = make_inputs([2, 3, 4, 3], rng=rng)
    weight = testing.make_tensor([2, 3, 4, 3], torch.float64, generator=rng)

    def third(impl_):
        x, *_ = inputs
        y = layer_epilogue(*inputs, impl=impl_)
        (g1,) = torch.autograd.grad((y * weight).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad((g1 * g1).sum(), x, create_graph=True)
        return torch.autograd.grad((g2 * weight).sum(), inputs, allow_unused=True)

    for got, want, name in zip(third(impl), third("ref"), NAMES):
        if want is None:  # style_bias: the first gradient with respect to x does not see it
            assert got is None or torch.count_nonzero(got) == 0, name
        else:
            testing.assert_close(got, want, what=f"third-order gradient of {name}")


# --- opcheck of the registered ops ------------------------------------------------------------


def _kernels(impl):
    return registration.OP.kernels(impl)


def _statistics(x):
    """mean and rstd as the forward kernel returns them."""
    _, mean, rstd = registration.OP.extension.fwd(
        x.detach(), None, None, None, *[torch.ones(x.shape[:2], dtype=x.dtype)] * 2, 0.2, 1.4, 1e-5
    )
    return mean, rstd


# Every layout in float32; float64 (whose statistics are float64) in one layout: each opcheck
# traces under AOT dispatch, seconds per case.
OPCHECK_CASES = [(torch.float32, layout) for layout in testing.LAYOUTS] + [
    (torch.float64, "channels_last")
]


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("dtype,layout", OPCHECK_CASES)
def test_opcheck(impl, dtype, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    shape = [2, 5, 3, 4]
    params = (0.2, 1.4)
    # Tracing a backward under AOT dispatch costs seconds: inputs require grad only for one
    # full forward per layout (its backward is *_bwd); the other calls check the schema and
    # the fake functions' shapes, dtypes and strides.
    full = make_inputs(shape, dtype, layout, rng, requires_grad=dtype == torch.float32)
    torch.library.opcheck(kernels.fwd, (*full, *params, 1e-5))
    x, noise, strength, bias, scale, style_bias = [t.detach() for t in full]
    shared_noise = make_inputs(shape, dtype, rng=rng, noise="shared", requires_grad=False)[1]
    dy = testing.make_tensor(shape, dtype, layout=layout, generator=rng)
    shared = (x, shared_noise, strength, None, scale, style_bias)
    torch.library.opcheck(kernels.fwd, (*shared, *params, 1e-5))
    torch.library.opcheck(kernels.fwd, (x, None, None, None, scale, style_bias, *params, 1e-5))
    _, mean, rstd = kernels.fwd(x, noise, strength, bias, scale, style_bias, *params, 1e-5)
    for mask in [[True] * 6, [True, False, True, False, True, False], [False] * 4 + [True] * 2]:
        torch.library.opcheck(
            kernels.bwd, (dy, x, noise, strength, bias, scale, mean, rstd, *params, mask)
        )
    _, mean, rstd = kernels.fwd(*shared, *params, 1e-5)
    mask = [True, True, True, False, True, True]
    torch.library.opcheck(
        kernels.bwd, (dy, x, shared_noise, strength, None, scale, mean, rstd, *params, mask)
    )


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_opcheck_backward_of_backward(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    shape = [2, 3, 4, 3]
    inputs = make_inputs(shape, torch.float64, "channels_last", rng)
    dy = testing.make_tensor(shape, torch.float64, generator=rng, requires_grad=True)
    with torch.no_grad():
        _, mean, rstd = kernels.fwd(*inputs, 0.2, 1.4, 1e-5)
    args = (dy, *inputs[:5], mean, rstd, 0.2, 1.4, [True] * 6)
    # AOT dispatch would trace the reference's double backward (~8 s); the eager second order
    # is what gradgradcheck verifies.
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(kernels.bwd, args, test_utils=utils)


# --- parity of every backend against the float64 reference ------------------------------------

SHAPES = [
    [1, 7, 5, 3],  # N = 1, odd C, H != W
    [3, 6, 10, 6],  # H*W not a power of two
    [2, 37, 4, 4],  # C spans more than two channel blocks of the kernels
]


def _parity(impl, dtype, layout, shape, noise, with_bias, rng, slack_reductions=1.0):
    inputs = make_inputs(shape, dtype, layout, rng, noise=noise, with_bias=with_bias)
    dy = testing.make_tensor(shape, dtype, generator=rng)
    out, grads = testing.forward_backward(call(impl), inputs, dy)
    ref, grads64 = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy.double())
    assert out.dtype == dtype and out.shape == inputs[0].shape
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y")
    for g, g64, name in zip(grads, grads64, NAMES):
        assert (g is None) == (g64 is None), name
        if g is not None:
            assert g.dtype == dtype and g.shape == g64.shape, name
            # x's gradient is per element; the others are sums over planes or the batch.
            slack = 1.0 if name == "x" else slack_reductions
            testing.assert_close(g, g64, dtype, f"d{name}", slack)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_forward_backward(impl, dtype, layout, shape, rng):
    testing.require_backend(OP, impl, "cpu")
    _parity(impl, dtype, layout, shape, "batch", True, rng, slack_reductions=2.0)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("noise,with_bias", OPTIONALS)
def test_parity_optional_inputs(impl, layout, noise, with_bias, rng):
    testing.require_backend(OP, impl, "cpu")
    _parity(impl, torch.float32, layout, [3, 5, 6, 7], noise, with_bias, rng, 2.0)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
def test_parity_r1_pattern(impl, dtype, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    shape = [2, 5, 6, 3]
    inputs = make_inputs(shape, dtype, layout, rng)
    # sum_hw y does not depend on x (instance norm removes the mean), so out.sum() would make
    # R1's gradient zero; a fixed weighting makes it a real second-order test.
    weight = testing.make_tensor(shape, torch.float64, generator=rng)

    def weighted(impl_):
        return lambda *a: layer_epilogue(*a, impl=impl_) * weight.to(a[0].dtype)

    grads = testing.r1_pattern(weighted(impl), inputs)
    grads64 = testing.r1_pattern(weighted("ref"), testing.to_float64(inputs))
    # Low precision: the loss itself is built from rounded outputs and gradients.
    slack = 1.0 if dtype in (torch.float32, torch.float64) else 4.0
    for g, g64, name in zip(grads, grads64, NAMES):
        testing.assert_close(g, g64, dtype, f"R1 d{name}", slack)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_cpp_float32_error_on_a_1024_plane_is_the_eager_references(layout, rng):
    """A 1024x1024 plane: every plane sum is over 1M values. Summed straight into one float32
    accumulator per lane (NCHW) or channel (channels_last), the C++ kernels' results were
    1e-5 (NCHW) and 2-5e-4 (channels_last) off the float64 reference, 100-4000x the eager
    float32 reference's error; blocked sums with double totals (csrc/layer_epilogue.cpp,
    kSumBlock) bring every output to the eager float32 error or below (measured 0.3-1.3x)."""
    testing.require_backend(OP, "cpp", "cpu")
    inputs = make_inputs([1, 2, 1024, 1024], torch.float32, layout, rng)
    dy = testing.make_tensor([1, 2, 1024, 1024], torch.float32, generator=rng)
    ref, grads64 = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy.double())
    eager, eager_grads = testing.forward_backward(call("ref"), inputs, dy)
    out, grads = testing.forward_backward(call("cpp"), inputs, dy)
    pairs = [("y", out, eager, ref)] + [
        (f"d{name}", g, e, g64) for name, g, e, g64 in zip(NAMES, grads, eager_grads, grads64)
    ]
    for name, got, eager_got, want in pairs:
        error = testing.relative_error(got, want)
        eager_error = testing.relative_error(eager_got, want)
        assert error <= 3 * eager_error + 1e-7, f"{name}: {error:.2e} vs eager {eager_error:.2e}"


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype,offset", [(torch.float32, 1e2), (torch.float64, 1e4)])
def test_statistics_of_a_plane_with_a_large_mean(impl, layout, dtype, offset, rng):
    """|mean| >> std: E[u^2] - E[u]^2, or a mean summed naively, loses the variance there.

    u = x exactly (alpha 1 and gain 1 make the activation the identity; no noise or bias), so
    the only error a sound kernel makes beyond one rounding is representing the mean in
    ``dtype``."""
    testing.require_backend(OP, impl, "cpu")
    # Planes long enough (16384) that a plain running sum of the mean is off by more than the
    # bound below, even split over a kernel's several accumulators.
    shape = [2, 3, 128, 128]
    x = (testing.make_tensor(shape, torch.float64, generator=rng) + offset).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
    scale = testing.make_tensor([2, 3], dtype, generator=rng)
    style_bias = testing.make_tensor([2, 3], dtype, generator=rng)
    args = (x, None, None, None, scale, style_bias)
    out = layer_epilogue(*args, alpha=1.0, gain=1.0, impl=impl)
    # Instance norm ignores a shift, and x - offset is exact (Sterbenz): an expectation free
    # of the large mean's own rounding.
    shifted = testing.to_float64(args)
    shifted[0] = shifted[0] - offset
    expected = first_principles(*shifted, 1.0, 1.0, 1e-8)
    rtol, atol = testing.TOLERANCES[dtype]
    mean_rounding = 2 * testing.UNIT_ROUNDOFF[dtype] * offset  # per unit std of u
    bound = atol + rtol * expected.abs() + mean_rounding * scale.double().abs()[:, :, None, None]
    err = (out.double() - expected).abs()
    assert (err <= bound).all(), f"worst error {err.max().item():.3e}"
    if impl != "ref":
        _, _, rstd = _kernels(impl).fwd(*args, 1.0, 1.0, 1e-8)
        var = (x.double() - offset).var(dim=(2, 3), unbiased=False)
        testing.assert_close(rstd, torch.rsqrt(var + 1e-8), what="rstd")


# --- NaN/Inf, empty tensors, determinism ------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_nan_and_inf_propagate_like_reference(impl, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    shape = [3, 4, 3, 3]
    inputs = make_inputs(shape, torch.float32, layout, rng)
    x, noise, _, _, scale, _ = inputs
    with torch.no_grad():
        x[0, 1, 0, 0] = float("nan")
        x[1, 2, 1, 1] = float("inf")
        x[1, 3, 2, 0] = -float("inf")
        noise[2, 0, 1, 2] = float("nan")  # every channel of sample 2
        scale[0, 3] = float("inf")
    dy = testing.make_tensor(shape, torch.float32, generator=rng)
    dy[0, 0, 1, 1] = float("nan")
    out, grads = testing.forward_backward(call(impl), inputs, dy)
    ref, grads64 = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy.double())
    testing.assert_close(out, ref, what="y with NaN/Inf inputs")
    for g, g64, name in zip(grads, grads64, NAMES):
        testing.assert_close(g, g64, what=f"d{name} with NaN/Inf inputs")


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("shape", [[0, 3, 4, 4], [2, 3, 0, 4]])
def test_empty_tensors(impl, shape, rng):
    testing.require_backend(OP, impl, "cpu")
    inputs = make_inputs(shape, torch.float32, rng=rng)
    out = layer_epilogue(*inputs, impl=impl)
    assert out.shape == inputs[0].shape
    grads = torch.autograd.grad(out.sum(), inputs)
    for g, t, name in zip(grads, inputs, NAMES):
        assert g.shape == t.shape, name
        assert torch.equal(g, torch.zeros_like(t)), name


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_kernels_are_deterministic_across_thread_counts(impl, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    inputs = make_inputs([3, 40, 9, 7], torch.float32, layout, rng, noise="shared")
    dy = testing.make_tensor(inputs[0].shape, torch.float32, generator=rng)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out, grads = testing.forward_backward(call(impl), inputs, dy)
            results.append([out, *grads])
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b, name in zip(results[0], other, ("y", *NAMES)):
            assert torch.equal(a, b), name


# --- noise drawn from a generator -------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_fresh_noise_is_reproducible_with_a_seeded_generator(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    shape = [2, 3, 5, 4]
    x, _, strength, bias, scale, style_bias = make_inputs(shape, torch.float32, rng=rng)
    args = (x, None, strength, bias, scale, style_bias)

    def run(seed):
        return layer_epilogue(*args, impl=impl, generator=torch.Generator().manual_seed(seed))

    drawn = torch.randn([2, 1, 5, 4], generator=torch.Generator().manual_seed(7))
    explicit = layer_epilogue(x, drawn, strength, bias, scale, style_bias, impl=impl)
    assert torch.equal(run(7), run(7))
    assert torch.equal(run(7), explicit)
    assert not torch.equal(run(7), run(8))
    # Without noise_strength there is no noise term: nothing is drawn, noise is not read.
    generator = torch.Generator().manual_seed(3)
    layer_epilogue(x, None, None, bias, scale, style_bias, impl=impl, generator=generator)
    assert generator.get_state().equal(torch.Generator().manual_seed(3).get_state())
    ignored = torch.full([7], float("nan"))
    assert torch.equal(
        layer_epilogue(x, ignored, None, bias, scale, style_bias, impl=impl),
        layer_epilogue(x, None, None, bias, scale, style_bias, impl=impl),
    )


# --- torch.compile ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_compile_fullgraph_matches_eager(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    inputs = make_inputs([2, 6, 5, 4], torch.float32, rng=rng, noise="shared")
    # mean(y^2) does not depend on x (each normalised plane has unit variance): weight it.
    weight = testing.make_tensor([2, 6, 5, 4], torch.float32, generator=rng)

    def layer(*inputs):
        return (layer_epilogue(*inputs, impl=impl) * weight).square().mean()

    compiled = torch.compile(layer, fullgraph=True)
    got, got_grads = testing.forward_backward(compiled, inputs, torch.tensor(1.0))
    want, want_grads = testing.forward_backward(layer, inputs, torch.tensor(1.0))
    testing.assert_close(got, want.double(), what="compiled output")
    for g, w, name in zip(got_grads, want_grads, NAMES):
        testing.assert_close(g, w.double(), what=f"compiled d{name}")


# --- Triton: the split plan on the interpreter, and the GPU ----------------------------------


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("noise", ["batch", "shared"])
def test_triton_split_plan_matches_reference(layout, noise, tiny_triton_blocks, rng):
    """Every gradient (dnoise included) through the split plan, in float64."""
    inputs = make_inputs([2, 3, 7, 9], torch.float64, layout, rng, noise=noise)
    x = inputs[0]
    plan = tiny_triton_blocks.plan_for(x, layout == "channels_last")
    assert not plan.one_pass and plan.chunks == 3 and plan.chunk_hw == 3 * plan.block_hw, plan
    dy = testing.make_tensor(x.shape, torch.float64, generator=rng)
    out, grads = testing.forward_backward(call("triton"), inputs, dy)
    ref, grads64 = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy)
    testing.assert_close(out, ref, what="y")
    for g, g64, name in zip(grads, grads64, NAMES):
        testing.assert_close(g, g64, what=f"d{name}")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("noise", ["batch", "shared"])
def test_triton_sweep_plan_matches_reference(layout, noise, sweeping_triton_blocks, rng):
    """Every gradient (dnoise included) through the sweep plan and its persistent grid, in
    float64."""
    inputs = make_inputs([2, 3, 7, 9], torch.float64, layout, rng, noise=noise)
    x = inputs[0]
    for backward in (False, True):
        plan = sweeping_triton_blocks.plan_for(x, layout == "channels_last", backward)
        assert plan.one_pass and plan.sweep and (plan.block_c, plan.block_hw) == (2, 16), plan
        assert plan.row_programs > 2, plan  # programs loop over several row blocks
    dy = testing.make_tensor(x.shape, torch.float64, generator=rng)
    out, grads = testing.forward_backward(call("triton"), inputs, dy)
    ref, grads64 = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy)
    testing.assert_close(out, ref, what="y")
    for g, g64, name in zip(grads, grads64, NAMES):
        testing.assert_close(g, g64, what=f"d{name}")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_triton_noise_gradient_one_pass(layout, rng):
    """dnoise from the one-pass plan (its coefficients come from the plane kernel), for a noise
    plane per sample and one shared by the batch, with other gradients not requested."""
    testing.require_backend(OP, "triton", "cpu")
    for noise in ("batch", "shared"):
        inputs = make_inputs([3, 5, 4, 6], torch.float64, layout, rng, noise=noise)
        inputs = [t.detach().requires_grad_(name == "noise") for name, t in zip(NAMES, inputs)]
        dy = testing.make_tensor(inputs[0].shape, torch.float64, generator=rng)
        _, (_, dnoise, *_) = testing.forward_backward(call("triton"), inputs, dy)
        _, (_, dnoise64, *_) = testing.forward_backward(call("ref"), inputs, dy)
        testing.assert_close(dnoise, dnoise64, what=f"dnoise ({noise})")


# StyleGAN's layers (C, H) at small N; the two largest take N = 1 to bound the float64
# reference's memory. Planes up to 128x128 take the one-pass plan, larger ones the split plan.
CUDA_SHAPES = [
    [2, 512, 8, 8],
    [2, 512, 32, 32],
    [2, 512, 64, 64],
    [2, 256, 128, 128],
    [2, 128, 256, 256],
    [1, 64, 512, 512],
    [1, 32, 1024, 1024],
]
CUDA_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _cuda_inputs(shape, dtype, layout, noise, rng):
    n, c, h, w = shape

    def make(s, layout="contiguous", scale=1.0):
        return testing.make_tensor(
            s, dtype, "cuda", layout, generator=rng, scale=scale, requires_grad=True
        )

    noise_t = make([n if noise == "batch" else 1, 1, h, w])
    return [make(shape, layout, 2.0), noise_t, make([c]), make([c]), make([n, c]), make([n, c])]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", CUDA_DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=lambda s: f"{s[1]}x{s[2]}")
def test_triton_cuda_parity(shape, dtype, layout):
    """impl='triton' on CUDA tensors against the float64 reference, every gradient (a noise
    plane per sample at even resolutions, one shared by the batch at the others)."""
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(shape[1] * shape[2])
    noise = "batch" if shape[2] in (8, 64, 256, 1024) else "shared"
    inputs = _cuda_inputs(shape, dtype, layout, noise, rng)
    dy = testing.make_tensor(shape, dtype, "cuda", layout, generator=rng)
    out, grads = testing.forward_backward(call("triton"), inputs, dy)
    ref, grads64 = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy.double())
    assert out.dtype == dtype and testing.is_layout(out, layout)
    testing.assert_close(out, ref, dtype, "y")
    for g, g64, name in zip(grads, grads64, NAMES):
        testing.assert_close(g, g64, dtype, f"d{name}", 1.0 if name == "x" else 2.0)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", CUDA_DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [[2, 64, 32, 32], [1, 8, 256, 256]], ids=["1pass", "split"])
def test_triton_cuda_r1_pattern(shape, dtype, layout):
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(11)
    inputs = _cuda_inputs(shape, dtype, layout, "batch", rng)
    weight = testing.make_tensor(shape, torch.float64, "cuda", generator=rng)

    def weighted(impl):
        return lambda *a: layer_epilogue(*a, impl=impl) * weight.to(a[0].dtype)

    grads = testing.r1_pattern(weighted("triton"), inputs)
    grads64 = testing.r1_pattern(weighted("ref"), testing.to_float64(inputs))
    slack = 1.0 if dtype == torch.float32 else 4.0
    for g, g64, name in zip(grads, grads64, NAMES):
        testing.assert_close(g, g64, dtype, f"R1 d{name}", slack)


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    x = torch.randn(4, 8, 5, 5)
    noise, strength, bias = torch.randn(4, 1, 5, 5), torch.randn(8), torch.randn(8)
    scale, style_bias = torch.randn(4, 8), torch.randn(4, 8)
    good = dict(
        x=x, noise=noise, noise_strength=strength, bias=bias, scale=scale, style_bias=style_bias
    )

    def check(error, match, **changes):
        with pytest.raises(error, match=match):
            layer_epilogue(**{**good, **changes})

    check(TypeError, "x must be a torch.Tensor", x=[1.0])
    check(TypeError, "x must be float16, bfloat16, float32 or float64", x=x.int())
    check(ValueError, "x must have 4 dimensions", x=x[0])
    check(
        ValueError,
        r"scale must have shape \[N, C\] = \[4, 8\], got \[4, 9\]",
        scale=scale[:, :1].expand(4, 9),
    )
    check(
        ValueError,
        r"style_bias must have shape \[N, C\] = \[4, 8\], got \[8, 4\]",
        style_bias=scale.T,
    )
    check(ValueError, "style_bias must have 2 dimensions, got shape", style_bias=bias)
    check(TypeError, r"scale must have the dtype of x \(torch.float32\)", scale=scale.double())
    check(ValueError, "style_bias is on meta but x is on cpu", style_bias=style_bias.to("meta"))
    check(ValueError, r"bias must have shape \[C\] = \[8\], got \[7\]", bias=bias[:7])
    check(
        ValueError,
        r"noise_strength must have shape \[C\] = \[8\], got \[4\]",
        noise_strength=strength[:4],
    )
    check(TypeError, "noise_strength must be a torch.Tensor", noise_strength=0.5)
    check(
        ValueError,
        r"noise must have shape \[N, 1, H, W\] = \[4, 1, 5, 5\] or \[1, 1, H, W\] = "
        r"\[1, 1, 5, 5\], got \[4, 8, 5, 5\]",
        noise=x,
    )
    check(TypeError, r"noise must have the dtype of x", noise=noise.half())
    check(TypeError, "alpha must be a real number", alpha="0.2")
    check(ValueError, "eps must be >= 0", eps=-1.0)
    check(TypeError, "generator must be a torch.Generator", generator=0)
    check(ValueError, "impl must be one of", impl="fast")


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_registered_ops_reject_bad_input(impl):
    kernels = _kernels(impl)
    x, scale = torch.randn(2, 3, 4, 4), torch.randn(2, 3)
    with pytest.raises(RuntimeError, match="scale must have shape"):
        kernels.fwd(x, None, None, None, scale[:, :2], scale, 0.2, 1.0, 1e-8)
    with pytest.raises(RuntimeError, match="noise and noise_strength must be given together"):
        kernels.fwd(x, torch.randn(2, 1, 4, 4), None, None, scale, scale, 0.2, 1.0, 1e-8)
    with pytest.raises(RuntimeError, match="noise must be"):
        kernels.fwd(x, torch.randn(3, 1, 4, 4), torch.randn(3), None, scale, scale, 0.2, 1, 0)
    mean, rstd = _statistics(x)
    with pytest.raises(RuntimeError, match="mean must be Float"):
        kernels.bwd(x, x, None, None, None, scale, mean.double(), rstd, 0.2, 1.0, [True] * 6)
    with pytest.raises(RuntimeError, match="dbias needs bias"):
        kernels.bwd(x, x, None, None, None, scale, mean, rstd, 0.2, 1.0, [False] * 3 + [True] * 3)


def test_unavailable_impl_lists_every_backend_reason():
    x, scale = torch.randn(2, 3, 4, 4), torch.randn(2, 3)
    with pytest.raises(NotImplementedError) as info:
        layer_epilogue(x, None, None, None, scale, scale, impl="cuda")
    message = str(info.value)
    assert "impl='cuda' cannot serve these inputs (cpu tensors): runs CUDA tensors only" in message
    # The suite runs under TRITON_INTERPRET=1, where the Triton kernels serve CPU tensors.
    assert "  triton: available" in message
    for backend in _backend.BACKENDS:
        assert f"  {backend}: " in message


def test_env_variable_selects_impl(monkeypatch):
    x, scale = torch.randn(2, 3, 4, 4), torch.randn(2, 3)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_LAYER_EPILOGUE", "cuda")
    with pytest.raises(NotImplementedError, match="impl='cuda'"):
        layer_epilogue(x, None, None, None, scale, scale)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_LAYER_EPILOGUE", "ref")
    monkeypatch.setenv("STYLEGAN_FAST_IMPL", "cuda")
    act = reference.Activation(None, None, None, 0.2, math.sqrt(2))
    expected = reference.layer_epilogue(x, act, scale, scale, 1e-8)
    assert torch.equal(layer_epilogue(x, None, None, None, scale, scale), expected)


def test_auto_fallback_warns_once(monkeypatch):
    monkeypatch.setitem(_backend._STATIC_REASONS, (OP, "cpp", "cpu"), "pretend it is missing")
    monkeypatch.setattr(_backend, "_WARNED", set())
    x, scale = torch.randn(2, 3, 4, 4), torch.randn(2, 3)
    with pytest.warns(FallbackWarning, match="uses impl='ref'.*pretend it is missing"):
        layer_epilogue(x, None, None, None, scale, scale)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer_epilogue(x, None, None, None, scale, scale)
