"""adain: reference vs first principles, gradcheck/gradgradcheck, opcheck, backend parity
(forward, backward, R1) over dtypes/shapes/layouts, large-mean planes, NaN/Inf, determinism,
compile, bad input."""

import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F

from stylegan_fast import FallbackWarning, _backend, testing
from stylegan_fast.ops import adain
from stylegan_fast.ops.adain import reference, registration

OP = "adain"
CPU_IMPLS = testing.implemented_backends(OP, "cpu")
KERNEL_IMPLS = [i for i in CPU_IMPLS if i != "ref"]


def naive_adain(x, scale, bias, eps):
    """Textbook AdaIN, one plane at a time, statistics as exactly summed Python floats."""
    y = torch.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            values = x[n, c].flatten().tolist()
            mean = math.fsum(values) / len(values)
            var = math.fsum((v - mean) ** 2 for v in values) / len(values)
            y[n, c] = scale[n, c].item() * (x[n, c] - mean) / math.sqrt(var + eps)
            y[n, c] += bias[n, c].item()
    return y


def naive_adain_backward(dy, x, scale, eps):
    """The instance-norm backward from its textbook formula, one plane at a time."""
    dx, dscale, dbias = torch.empty_like(x), torch.empty_like(scale), torch.empty_like(scale)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            plane, grad = x[n, c], dy[n, c]
            mean = plane.mean()
            rstd = 1 / math.sqrt(((plane - mean) ** 2).mean().item() + eps)
            x_hat = (plane - mean) * rstd
            dscale[n, c] = (grad * x_hat).sum()
            dbias[n, c] = grad.sum()
            g = grad * scale[n, c]
            dx[n, c] = rstd * (g - g.mean() - x_hat * (g * x_hat).mean())
    return dx, dscale, dbias


def call(impl, eps=1e-8):
    return lambda x, scale, bias: adain(x, scale, bias, eps=eps, impl=impl)


def make_inputs(shape, dtype, layout, rng, requires_grad=True, x_scale=2.0):
    x = testing.make_tensor(
        shape, dtype, layout=layout, generator=rng, scale=x_scale, requires_grad=requires_grad
    )
    scale = testing.make_tensor(shape[:2], dtype, generator=rng, requires_grad=requires_grad)
    bias = testing.make_tensor(shape[:2], dtype, generator=rng, requires_grad=requires_grad)
    return x, scale, bias


# --- reference vs first principles (float64) -------------------------------------------------


@pytest.mark.parametrize("shape", [[2, 3, 4, 5], [1, 4, 7, 3]])
@pytest.mark.parametrize("eps", [1e-8, 0.5])
def test_reference_matches_first_principles(shape, eps, rng):
    x, scale, bias = make_inputs(shape, torch.float64, "contiguous", rng, requires_grad=False)
    x = x + 3  # a nonzero mean, so that subtracting it matters
    out = adain(x, scale, bias, eps=eps, impl="ref")
    testing.assert_close(out, naive_adain(x, scale, bias, eps), what="y vs loops")
    # torch's own instance norm (biased variance, eps inside the square root), then the style.
    expected = F.instance_norm(x, eps=eps) * scale[:, :, None, None] + bias[:, :, None, None]
    testing.assert_close(out, expected, what="y vs F.instance_norm")


def test_reference_gradients_match_textbook_backward(rng):
    x, scale, bias = make_inputs([2, 3, 5, 4], torch.float64, "contiguous", rng)
    dy = testing.make_tensor(x.shape, torch.float64, generator=rng)
    eps = 0.1
    _, grads = testing.forward_backward(call("ref", eps), (x, scale, bias), dy)
    expected = naive_adain_backward(dy, x.detach(), scale.detach(), eps)
    for got, want, name in zip(grads, expected, ("dx", "dscale", "dbias")):
        testing.assert_close(got, want, what=name)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_one_pixel_planes_give_bias(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([3, 4, 1, 1], torch.float32, "contiguous", rng)
    y = adain(x, scale, bias, impl=impl)
    assert torch.equal(y, bias.detach()[:, :, None, None])


def test_reference_low_precision_statistics_in_float32(rng):
    # Squares of values ~300 overflow float16 (max 65504): statistics in float16 would give
    # Inf variances and zero outputs.
    x, scale, bias = make_inputs([2, 3, 6, 5], torch.float16, "contiguous", rng, False, 300.0)
    out = adain(x, scale, bias, impl="ref")
    assert out.dtype == torch.float16
    testing.assert_close(out, naive_adain(*testing.to_float64((x, scale, bias)), 1e-8))


# --- gradcheck / gradgradcheck --------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(impl, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    inputs = make_inputs([2, 3, 3, 4], torch.float64, layout, rng)
    # The full Jacobians call the kernels twice per input element: ~500 calls, ~10-40 ms each
    # under the Triton interpreter. fast_mode checks random projections of them instead (a
    # few calls per input tensor); the parity tests compare every gradient element.
    fast = impl == "triton"
    for eps in [1e-8, 0.3]:
        assert torch.autograd.gradcheck(call(impl, eps), inputs, fast_mode=fast)
        assert torch.autograd.gradgradcheck(call(impl, eps), inputs, fast_mode=fast)


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_third_order_matches_reference(impl, rng):
    """The kernels serve two orders; every higher one goes through the reference."""
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([2, 3, 4, 3], torch.float64, "contiguous", rng)
    weight = testing.make_tensor(x.shape, torch.float64, generator=rng)

    def third(impl_):
        y = adain(x, scale, bias, eps=0.1, impl=impl_)
        (g1,) = torch.autograd.grad((y * y * weight).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad((g1 * g1).sum(), x, create_graph=True)
        return torch.autograd.grad((g2 * weight).sum(), (x, scale, bias), allow_unused=True)

    for got, want, name in zip(third(impl), third("ref"), ("x", "scale", "bias")):
        if want is None:
            assert got is None or torch.count_nonzero(got) == 0
        else:
            testing.assert_close(got, want, what=f"third-order gradient of {name}")


# --- opcheck of the registered ops ------------------------------------------------------------


def _kernels(impl):
    return registration.OP.kernels(impl)


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_opcheck(impl, layout, dtype, rng):
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    x, scale, bias = make_inputs([2, 5, 3, 4], dtype, layout, rng)
    dy = testing.make_tensor(x.shape, dtype, layout=layout, generator=rng)
    torch.library.opcheck(kernels.fwd, (x, scale, bias, 1e-5))
    _, mean, rstd = kernels.fwd(x, scale, bias, 1e-5)
    # Inputs without grad: tracing adain_bwd's own backward (the reference differentiated
    # twice) costs ~3.5 s per call; test_opcheck_bwd_autograd covers it once per layout.
    x, scale = x.detach(), scale.detach()
    for mask in ([True, True, True], [True, False, False], [False, True, True]):
        torch.library.opcheck(kernels.bwd, (dy, x, scale, mean, rstd, mask))


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck_bwd_autograd(impl, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    x, scale, bias = make_inputs([2, 5, 3, 4], torch.float32, layout, rng)
    dy = testing.make_tensor(x.shape, torch.float32, layout=layout, generator=rng)
    dy.requires_grad_(True)
    _, mean, rstd = kernels.fwd(x, scale, bias, 1e-5)
    torch.library.opcheck(kernels.bwd, (dy, x, scale, mean, rstd, [True, False, True]))


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
def test_saved_statistics(impl, layout, dtype, rng):
    """adain_fwd's mean and rstd: per plane, in float32 (float64 for float64)."""
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([2, 3, 67, 65], dtype, layout, rng, requires_grad=False)
    # Offset the planes: a mean near zero has no relative accuracy to speak of (its error is
    # set by the spread of the plane), so that check needs a mean away from zero.
    x = x + 3
    _, mean, rstd = _kernels(impl).fwd(x, scale, bias, 0.01)
    stats_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    assert mean.dtype == rstd.dtype == stats_dtype and mean.shape == rstd.shape == (2, 3)
    x64 = x.double()
    testing.assert_close(mean, x64.mean((2, 3)), stats_dtype, "mean")
    var = x64.var((2, 3), correction=0)
    testing.assert_close(rstd, (var + 0.01).rsqrt(), stats_dtype, "rstd")


# --- parity of every backend against the float64 reference ------------------------------------

SHAPES = [
    [1, 7, 5, 3],  # N = 1, odd C, H != W
    [3, 6, 10, 6],  # H*W = 60, not a power of two
    [2, 5, 1, 1],  # one pixel per plane: y = bias, zero dx
    [1, 3, 67, 65],  # planes span several reduction chunks, in both layouts
]


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_parity_forward_backward(impl, dtype, layout, shape, rng):
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs(shape, dtype, layout, rng)
    dy = testing.make_tensor(shape, dtype, generator=rng)
    out, grads = testing.forward_backward(call(impl), (x, scale, bias), dy)
    ref, grads64 = testing.forward_backward(
        call("ref"), testing.to_float64((x, scale, bias)), dy.double()
    )
    assert out.dtype == dtype and out.shape == x.shape
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y")
    testing.assert_close(grads[0], grads64[0], dtype, "dx")
    # dscale and dbias sum over whole planes: allow the summation's own rounding.
    testing.assert_close(grads[1], grads64[1], dtype, "dscale", 2.0)
    testing.assert_close(grads[2], grads64[2], dtype, "dbias", 2.0)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
def test_parity_r1_pattern(impl, dtype, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([2, 5, 6, 3], dtype, layout, rng)
    # sum(adain(x)) does not depend on x (each plane sums to H*W*bias), so R1's gradient would
    # be rounding noise; weighting the output stands in for the layers that follow in D.
    weight = testing.make_tensor(x.shape, torch.float64, generator=rng)
    grads = testing.r1_pattern(lambda *a: adain(*a, impl=impl) * weight.to(dtype), (x, scale, bias))
    grads64 = testing.r1_pattern(
        lambda *a: adain(*a, impl="ref") * weight, testing.to_float64((x, scale, bias))
    )
    # Low precision: the loss itself is built from rounded outputs and gradients (measured
    # worst: 0.84 of the unslackened bound, eager reference in float16).
    slack = 1.0 if dtype in (torch.float32, torch.float64) else 2.0
    for g, g64, name in zip(grads, grads64, ("dx", "dscale", "dbias")):
        testing.assert_close(g, g64, dtype, f"R1 {name}", slack)


def _naive_float32_adain(x, scale, bias, eps):
    """E[x^2] - E[x]^2 in float32: the cancellation the kernels must avoid."""
    x32 = x.float()
    mean = x32.mean((2, 3), keepdim=True)
    var = (x32 * x32).mean((2, 3), keepdim=True) - mean * mean
    y = (x32 - mean) * torch.rsqrt(var.clamp_min(0) + eps)
    return (y * scale.float()[:, :, None, None] + bias.float()[:, :, None, None]).to(x.dtype)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_large_mean_planes(impl, dtype, layout, rng):
    """Planes with mean 1e3 and standard deviation 1 (several reduction chunks)."""
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([2, 3, 67, 65], dtype, layout, rng, x_scale=1.0)
    with torch.no_grad():
        x += 1e3
    dy = testing.make_tensor(x.shape, dtype, generator=rng)
    out, grads = testing.forward_backward(call(impl), (x, scale, bias), dy)
    inputs64 = testing.to_float64((x, scale, bias))
    ref, grads64 = testing.forward_backward(call("ref"), inputs64, dy.double())
    # float32 holds a mean of 1e3 only to half an ulp, 3e-5, which moves x_hat by up to 3e-5
    # against a spread of 1 whatever the algorithm: 30x float32's atol (torch's own float32
    # mean put the eager reference 1.1e-4 off). Slack 256 leaves room for a few such roundings
    # and is still ~1000x below the error of the one-pass variance (asserted below).
    # float16's tolerance covers it.
    slack = 256.0 if dtype == torch.float32 else 1.0
    testing.assert_close(out, ref, dtype, "y", slack)
    # The gradients sum over whole planes: allow the summation's own rounding.
    for g, g64, name in zip(grads, grads64, ("dx", "dscale", "dbias")):
        testing.assert_close(g, g64, dtype, name, 2 * slack)
    # The check has teeth: the textbook one-pass variance fails it by far.
    with pytest.raises(AssertionError, match="elements outside"):
        testing.assert_close(
            _naive_float32_adain(x.detach(), scale.detach(), bias.detach(), 1e-8),
            ref,
            dtype,
            "y",
            slack,
        )


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_nan_and_inf_propagate_like_reference(impl, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([2, 5, 3, 3], torch.float32, layout, rng)
    dy = testing.make_tensor(x.shape, torch.float32, generator=rng)
    with torch.no_grad():
        x[0, 1, 0, 0] = float("nan")
        x[1, 2, 1, 1] = float("inf")
        x[1, 3, 2, 0] = -float("inf")
        scale[0, 2] = float("inf")
        scale[1, 4] = 0.0
        bias[1, 0] = float("nan")
    dy[0, 0, 1, 1] = float("nan")
    dy[0, 3, 2, 2] = float("inf")
    dy[1, 4, 0, 1] = -float("inf")
    out, grads = testing.forward_backward(call(impl), (x, scale, bias), dy)
    ref, grads64 = testing.forward_backward(
        call("ref"), testing.to_float64((x, scale, bias)), dy.double()
    )
    testing.assert_close(out, ref, what="y with NaN/Inf inputs")
    for g, g64, name in zip(grads, grads64, ("dx", "dscale", "dbias")):
        testing.assert_close(g, g64, what=f"{name} with NaN/Inf inputs")


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("shape", [[0, 3, 4, 4], [2, 0, 4, 4], [2, 3, 0, 4], [2, 3, 4, 0]])
def test_empty_tensors(impl, shape):
    testing.require_backend(OP, impl, "cpu")
    x = torch.empty(shape, requires_grad=True)
    scale = torch.randn(shape[:2], requires_grad=True)
    bias = torch.randn(shape[:2], requires_grad=True)
    y = adain(x, scale, bias, impl=impl)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert torch.equal(scale.grad, torch.zeros(shape[:2]))
    assert torch.equal(bias.grad, torch.zeros(shape[:2]))


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_kernels_are_deterministic_across_thread_counts(impl, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([2, 8, 70, 64], torch.float32, layout, rng)
    dy = testing.make_tensor(x.shape, torch.float32, generator=rng)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            out, grads = testing.forward_backward(call(impl), (x, scale, bias), dy)
            results.append([out, *grads])
    finally:
        torch.set_num_threads(threads)
    for a, b, name in zip(*results, ("y", "dx", "dscale", "dbias")):
        assert torch.equal(a, b), f"{name} differs between 1 and 3 threads"


# --- torch.compile ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_compile_fullgraph_matches_eager(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    x, scale, bias = make_inputs([2, 6, 5, 4], torch.float32, "contiguous", rng)
    weight = testing.make_tensor(x.shape, torch.float32, generator=rng)

    def layer(x, scale, bias):
        return (adain(x, scale, bias, impl=impl) * weight).square().mean()

    compiled = torch.compile(layer, fullgraph=True)
    got, got_grads = testing.forward_backward(compiled, (x, scale, bias), torch.tensor(1.0))
    want, want_grads = testing.forward_backward(layer, (x, scale, bias), torch.tensor(1.0))
    testing.assert_close(got, want.double(), what="compiled output")
    for g, w in zip(got_grads, want_grads):
        testing.assert_close(g, w.double(), what="compiled gradient")


# --- Triton: the split plan on the interpreter, and the GPU ----------------------------------


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_triton_split_plan_matches_reference(layout, tiny_triton_blocks, rng):
    x, scale, bias = make_inputs([2, 3, 7, 9], torch.float64, layout, rng)
    with torch.no_grad():
        x += 50.0  # a mean large against the spread: the chunk merge must not cancel
    plan = tiny_triton_blocks.plan_for(x, layout == "channels_last")
    assert not plan.one_pass and plan.chunks == 3 and plan.chunk_hw == 3 * plan.block_hw, plan
    dy = testing.make_tensor(x.shape, torch.float64, generator=rng)
    out, grads = testing.forward_backward(call("triton"), (x, scale, bias), dy)
    inputs64 = testing.to_float64((x, scale, bias))
    ref, grads64 = testing.forward_backward(call("ref"), inputs64, dy)
    testing.assert_close(out, ref, what="y")
    for g, g64, name in zip(grads, grads64, ("dx", "dscale", "dbias")):
        testing.assert_close(g, g64, what=name)
    _, mean, rstd = registration.OP.triton.fwd(x.detach(), scale.detach(), bias.detach(), 1e-8)
    x64 = x.detach()
    testing.assert_close(mean, x64.mean((2, 3)), what="mean")
    testing.assert_close(rstd, (x64.var((2, 3), correction=0) + 1e-8).rsqrt(), what="rstd")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_triton_sweep_plan_matches_reference(layout, sweeping_triton_blocks, rng):
    x, scale, bias = make_inputs([2, 3, 7, 9], torch.float64, layout, rng)
    with torch.no_grad():
        x += 50.0  # a mean large against the spread: the sub-tile merge must not cancel
    for backward in (False, True):
        plan = sweeping_triton_blocks.plan_for(x, layout == "channels_last", backward)
        assert plan.one_pass and plan.sweep and (plan.block_c, plan.block_hw) == (2, 16), plan
        assert plan.row_programs > 2, plan  # programs loop over several row blocks
    dy = testing.make_tensor(x.shape, torch.float64, generator=rng)
    out, grads = testing.forward_backward(call("triton"), (x, scale, bias), dy)
    inputs64 = testing.to_float64((x, scale, bias))
    ref, grads64 = testing.forward_backward(call("ref"), inputs64, dy)
    testing.assert_close(out, ref, what="y")
    for g, g64, name in zip(grads, grads64, ("dx", "dscale", "dbias")):
        testing.assert_close(g, g64, what=name)


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


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", CUDA_DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=lambda s: f"{s[1]}x{s[2]}")
def test_triton_cuda_parity(shape, dtype, layout):
    """impl='triton' on CUDA tensors against the float64 reference: y, dx, dscale, dbias."""
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(shape[1] * shape[2])

    def make(s, layout="contiguous", scale=1.0):
        return testing.make_tensor(
            s, dtype, "cuda", layout, generator=rng, scale=scale, requires_grad=True
        )

    x, scale, bias = make(shape, layout, 2.0), make(shape[:2]), make(shape[:2])
    dy = testing.make_tensor(shape, dtype, "cuda", layout, generator=rng)
    out, grads = testing.forward_backward(call("triton"), (x, scale, bias), dy)
    inputs64 = testing.to_float64((x, scale, bias))
    ref, grads64 = testing.forward_backward(call("ref"), inputs64, dy.double())
    assert out.dtype == dtype and testing.is_layout(out, layout)
    testing.assert_close(out, ref, dtype, "y")
    testing.assert_close(grads[0], grads64[0], dtype, "dx")
    testing.assert_close(grads[1], grads64[1], dtype, "dscale", 2.0)
    testing.assert_close(grads[2], grads64[2], dtype, "dbias", 2.0)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", CUDA_DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [[2, 64, 32, 32], [1, 8, 256, 256]], ids=["1pass", "split"])
def test_triton_cuda_r1_pattern(shape, dtype, layout):
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(7)
    inputs = [
        testing.make_tensor(s, dtype, "cuda", lay, generator=rng, requires_grad=True)
        for s, lay in ((shape, layout), (shape[:2], "contiguous"), (shape[:2], "contiguous"))
    ]
    weight = testing.make_tensor(shape, torch.float64, "cuda", generator=rng)
    grads = testing.r1_pattern(lambda *a: adain(*a, impl="triton") * weight.to(dtype), inputs)
    grads64 = testing.r1_pattern(
        lambda *a: adain(*a, impl="ref") * weight, testing.to_float64(inputs)
    )
    slack = 1.0 if dtype == torch.float32 else 2.0
    for g, g64, name in zip(grads, grads64, ("dx", "dscale", "dbias")):
        testing.assert_close(g, g64, dtype, f"R1 {name}", slack)


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    x = torch.randn(4, 8, 5, 5)
    scale, bias = torch.randn(4, 8), torch.randn(4, 8)
    with pytest.raises(TypeError, match="adain: x must be a torch.Tensor"):
        adain([1.0], scale, bias)
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        adain(x.int(), scale, bias)
    with pytest.raises(ValueError, match=r"x must have 4 dimensions, got shape \[4, 8, 5\]"):
        adain(x[..., 0], scale, bias)
    with pytest.raises(TypeError, match="scale must be a torch.Tensor"):
        adain(x, 1.0, bias)
    # No broadcasting: a per-channel or a [N, C, 1, 1] style is refused, not silently expanded.
    for bad in ([8], [1, 8], [4, 9], [4, 8, 1, 1]):
        with pytest.raises(
            ValueError, match=re.escape(f"scale must have shape [N, C] = [4, 8], got {bad}")
        ):
            adain(x, torch.randn(bad), bias)
    with pytest.raises(ValueError, match=r"bias must have shape \[N, C\] = \[4, 8\], got \[8\]"):
        adain(x, scale, torch.randn(8))
    with pytest.raises(TypeError, match=r"scale must have the dtype of x \(torch.float32\)"):
        adain(x, scale.double(), bias)
    with pytest.raises(TypeError, match=r"bias must have the dtype of x \(torch.float32\)"):
        adain(x, scale, bias.half())
    with pytest.raises(ValueError, match="bias is on meta but x is on cpu"):
        adain(x, scale, torch.empty(4, 8, device="meta"))
    for eps in (-1e-8, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eps must be finite and >= 0"):
            adain(x, scale, bias, eps=eps)
    with pytest.raises(TypeError, match="eps must be a real number"):
        adain(x, scale, bias, eps="1e-8")
    with pytest.raises(ValueError, match="impl must be one of"):
        adain(x, scale, bias, impl="fast")


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_registered_ops_check_their_inputs(impl):
    """A direct torch.ops call with bad input raises instead of reading out of bounds."""
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    x, scale, bias = torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3)
    with pytest.raises(RuntimeError, match=r"scale must have shape \[N, C\] = \[2, 3\]"):
        kernels.fwd(x, scale[:, :2], bias, 1e-8)
    with pytest.raises(RuntimeError, match="bias must be a Double tensor"):
        kernels.fwd(x.double(), scale.double(), bias, 1e-8)
    with pytest.raises(RuntimeError, match=r"x must have shape \[N, C, H, W\]"):
        kernels.fwd(x[0], scale, bias, 1e-8)
    _, mean, rstd = kernels.fwd(x, scale, bias, 1e-8)
    with pytest.raises(RuntimeError, match="dy must match x"):
        kernels.bwd(x[:1], x, scale, mean, rstd, [True, True, True])
    with pytest.raises(RuntimeError, match="rstd must be a Float tensor"):
        kernels.bwd(x, x, scale, mean, rstd.double(), [True, True, True])


def test_unavailable_impl_lists_every_backend_reason():
    x, scale, bias = torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3)
    with pytest.raises(NotImplementedError) as info:
        adain(x, scale, bias, impl="cuda")
    message = str(info.value)
    assert "impl='cuda' cannot serve these inputs (cpu tensors): runs CUDA tensors only" in message
    for backend in _backend.BACKENDS:
        assert f"  {backend}: " in message
    # The suite runs under TRITON_INTERPRET=1, where the Triton kernels serve CPU tensors.
    assert "  triton: available" in message


def test_env_variable_selects_impl(monkeypatch):
    x, scale, bias = torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_ADAIN", "cuda")
    with pytest.raises(NotImplementedError, match="impl='cuda'"):
        adain(x, scale, bias)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_ADAIN", "ref")
    monkeypatch.setenv("STYLEGAN_FAST_IMPL", "cuda")
    assert torch.equal(adain(x, scale, bias), reference.adain(x, scale, bias, 1e-8))


def test_auto_fallback_warns_once(monkeypatch):
    monkeypatch.setitem(_backend._STATIC_REASONS, (OP, "cpp", "cpu"), "pretend it is missing")
    monkeypatch.setattr(_backend, "_WARNED", set())
    x, scale, bias = torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3)
    with pytest.warns(FallbackWarning, match="uses impl='ref'.*pretend it is missing"):
        adain(x, scale, bias)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adain(x, scale, bias)  # a second call stays quiet
