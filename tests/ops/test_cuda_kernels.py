"""The CUDA kernels of _C (impl='cuda'): parity with the float64 reference (forward, backward
and the R1 double backward) over fp32/fp16/bf16/fp64, contiguous/channels_last/strided inputs
and StyleGAN layer shapes at small N, with every output NaN-poisoned before the kernels write
it (conftest sets STYLEGAN_FAST_POISON_OUTPUTS=1); each traversal the kernels choose by shape
(rows, columns, chunked rows; one-pass and two-pass planes; fast and generic resampling tiles)
is reached at least once. Plus opcheck, determinism, NaN/Inf, empty tensors, and bad direct
calls. Every test needs a GPU (the `cuda` marker: skipped, saying so, without one)."""

import pytest
import torch

from stylegan_fast import testing
from stylegan_fast.ops import (
    adain,
    bias_act,
    downsample2d,
    filter2d,
    layer_epilogue,
    noise_injection,
    setup_filter,
    upfirdn2d,
    upsample2d,
)
from stylegan_fast.ops.adain import registration as adain_registration
from stylegan_fast.ops.bias_act import ACTIVATIONS
from stylegan_fast.ops.bias_act import registration as bias_act_registration
from stylegan_fast.ops.layer_epilogue import registration as epilogue_registration
from stylegan_fast.ops.noise_injection import registration as noise_registration
from stylegan_fast.ops.upfirdn2d import registration as upfirdn2d_registration

pytestmark = pytest.mark.cuda

DEVICE = "cuda"
DTYPES = testing.FLOAT_DTYPES
BLUR = [1, 3, 3, 1]


def cuda_tensor(shape, dtype, rng, layout="contiguous", scale=1.0, requires_grad=False):
    return testing.make_tensor(
        shape, dtype, DEVICE, layout, rng, scale=scale, requires_grad=requires_grad
    )


def on_cpu_float64(tensors):
    """float64 CPU leaves with the same values (and requires_grad) for the reference."""
    out = []
    for t in tensors:
        if t is None:
            out.append(None)
        else:
            out.append(t.detach().cpu().double().requires_grad_(t.requires_grad))
    return out


def low_precision_slack(dtype, factor=4.0):
    return 1.0 if dtype in (torch.float32, torch.float64) else factor


# --- bias_act ----------------------------------------------------------------------------------

# (shape, dim): the traversal each reaches in its layout.
BIAS_ACT_SHAPES = [
    ([4, 512, 4, 4], 1),  # rows of 16 (NCHW), columns of 512 (channels_last)
    ([2, 64, 32, 32], 1),  # rows of 1024
    ([1, 3, 130, 130], 1),  # rows longer than one chunk (16900 > 8K / 16K elements)
    ([3, 5, 7, 9], 1),  # odd rows: unaligned vector heads and tails; C = 5: scalar columns
    ([8, 512], 1),  # a fully connected layer: columns
    ([2, 6, 4, 5], 3),  # bias along the last axis
    ([5, 3, 4], 0),  # bias along the first axis
]


def bias_act_call(impl, act="lrelu", dim=1, **kw):
    return lambda x, b: bias_act(x, b, dim=dim, act=act, impl=impl, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape,dim", BIAS_ACT_SHAPES)
def test_bias_act_parity(dtype, layout, shape, dim, rng):
    testing.require_backend("bias_act", "cuda", DEVICE)
    x = cuda_tensor(shape, dtype, rng, layout, scale=2.0, requires_grad=True)
    b = cuda_tensor([shape[dim]], dtype, rng, requires_grad=True)
    dy = cuda_tensor(shape, dtype, rng)
    out, (dx, db) = testing.forward_backward(bias_act_call("cuda", dim=dim), (x, b), dy)
    ref, (dx64, db64) = testing.forward_backward(
        bias_act_call("ref", dim=dim), on_cpu_float64((x, b)), dy.cpu().double()
    )
    assert out.device.type == "cuda" and out.dtype == dtype
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y")
    testing.assert_close(dx, dx64, dtype, "dx")
    testing.assert_close(db, db64, dtype, "db", 2.0)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_bias_act_every_activation_with_clamp(act, layout, rng):
    x = cuda_tensor([2, 40, 6, 5], torch.float32, rng, layout, scale=2.0, requires_grad=True)
    b = cuda_tensor([40], torch.float32, rng, requires_grad=True)
    dy = cuda_tensor(x.shape, torch.float32, rng)
    kw = dict(act=act, alpha=0.3, gain=1.3, clamp=1.1)
    out, grads = testing.forward_backward(bias_act_call("cuda", **kw), (x, b), dy)
    ref, grads64 = testing.forward_backward(
        bias_act_call("ref", **kw), on_cpu_float64((x, b)), dy.cpu().double()
    )
    testing.assert_close(out, ref, what="y")
    testing.assert_close(grads[0], grads64[0], what="dx")
    testing.assert_close(grads[1], grads64[1], what="db", slack=2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("act", ["lrelu", "softplus"])
def test_bias_act_r1_pattern(dtype, layout, act, rng):
    x = cuda_tensor([2, 16, 8, 8], dtype, rng, layout, requires_grad=True)
    b = cuda_tensor([16], dtype, rng, requires_grad=True)
    grads = testing.r1_pattern(bias_act_call("cuda", act=act), (x, b))
    grads64 = testing.r1_pattern(bias_act_call("ref", act=act), on_cpu_float64((x, b)))
    for g, g64, name in zip(grads, grads64, ("dx", "db")):
        testing.assert_close(g, g64, dtype, f"R1 {name}", low_precision_slack(dtype))


def test_bias_act_nan_inf_and_no_bias(rng):
    x = cuda_tensor([2, 4, 3, 3], torch.float32, rng)
    x[0, 1, 0, 0], x[1, 2, 1, 1], x[1, 3, 2, 0] = float("nan"), float("inf"), -float("inf")
    for b in (None, cuda_tensor([4], torch.float32, rng)):
        for act in ("relu", "lrelu", "tanh", "elu", "softplus"):
            for clamp in (None, 2.0):
                out = bias_act(x, b, act=act, clamp=clamp, impl="cuda")
                ref = bias_act(*on_cpu_float64((x, b)), act=act, clamp=clamp, impl="ref")
                testing.assert_close(out, ref, what=f"{act} clamp={clamp} bias={b is not None}")


def test_bias_act_empty_and_deterministic(rng):
    x = torch.empty(0, 3, 4, 4, device=DEVICE, requires_grad=True)
    b = torch.randn(3, device=DEVICE, requires_grad=True)
    bias_act(x, b, impl="cuda").sum().backward()
    assert torch.equal(b.grad, torch.zeros(3, device=DEVICE))
    for shape in ([16, 256, 16, 16], [64, 512]):
        x = cuda_tensor(shape, torch.float32, rng)
        dy = cuda_tensor(shape, torch.float32, rng)
        b = cuda_tensor([shape[1]], torch.float32, rng)
        runs = [
            bias_act_registration.OP.extension.bwd(dy, x, b, 1, "lrelu", 0.2, 1.4, None, True)
            for _ in range(3)
        ]
        for dx, db in runs[1:]:
            assert torch.equal(dx, runs[0][0]) and torch.equal(db, runs[0][1])


def test_bias_act_opcheck(rng):
    for layout in ("contiguous", "channels_last"):
        x = cuda_tensor([2, 5, 4, 3], torch.float32, rng, layout, requires_grad=True)
        b = cuda_tensor([5], torch.float32, rng, requires_grad=True)
        args = (x, b, 1, "lrelu", 0.2, 2**0.5, None)
        torch.library.opcheck(bias_act_registration.OP.extension.fwd, args)
        dy = cuda_tensor(x.shape, torch.float32, rng)
        torch.library.opcheck(bias_act_registration.OP.extension.bwd, (dy, *args, True))


def test_bias_act_direct_calls_check_their_arguments(rng):
    fwd = bias_act_registration.OP.extension.fwd
    x = cuda_tensor([2, 3, 4, 4], torch.float32, rng)
    with pytest.raises(RuntimeError, match="b is on cpu but x is on cuda"):
        fwd(x, torch.zeros(3), 1, "lrelu", 0.2, 1.0, None)
    with pytest.raises(RuntimeError, match="b must be Float like x"):
        fwd(x, torch.zeros(3, device=DEVICE, dtype=torch.float16), 1, "lrelu", 0.2, 1.0, None)
    with pytest.raises(RuntimeError, match=r"b must have shape \[3\]"):
        fwd(x, torch.zeros(4, device=DEVICE), 1, "lrelu", 0.2, 1.0, None)
    with pytest.raises(RuntimeError, match="unknown activation 'gelu'"):
        fwd(x, None, 1, "gelu", 0.2, 1.0, None)


# --- upfirdn2d ---------------------------------------------------------------------------------

UPFIRDN2D_SHAPES = [
    [2, 64, 16, 16],  # StyleGAN layers at small N
    [2, 512, 4, 4],
    [1, 32, 70, 66],  # several tiles per plane
    [2, 3, 33, 17],  # odd sizes, C = 3 (RGB skips)
]

# name -> (call(x, f, impl), taps). The first four take the fast kernels (and so do their
# adjoints in the backward); the others the generic one.
UPFIRDN2D_CONFIGS = {
    "upsample": (lambda x, f, impl: upsample2d(x, f, impl=impl), BLUR),
    "downsample": (lambda x, f, impl: downsample2d(x, f, impl=impl), BLUR),
    "blur": (lambda x, f, impl: filter2d(x, f, padding=[1, 0, -1, 2], impl=impl), BLUR),
    "upsample_separable": (
        lambda x, f, impl: upfirdn2d(x, f, up=2, padding=[2, 1, 1, 2], gain=4, impl=impl),
        "separable",
    ),
    "general_2d": (
        lambda x, f, impl: upfirdn2d(x, f, [3, 1], [1, 2], [-1, 2, 3, 0], True, 0.8, impl=impl),
        [[1.0, -2.0, 0.5, 2.0, 1.0], [3.0, 0.0, 1.0, -1.0, 0.5], [0.5, 1.0, 2.0, 1.0, -0.5]],
    ),
    "separable_8": (
        lambda x, f, impl: upfirdn2d(x, f, [2, 2], [3, 1], [4, 3, 2, 5], False, -2.0, impl=impl),
        list(range(1, 9)),
    ),
}


def upfirdn2d_filter(taps):
    if taps is BLUR:
        return setup_filter(BLUR, device=DEVICE)
    if taps == "separable":
        return setup_filter(BLUR, device=DEVICE, separable=True)
    return torch.tensor(taps, dtype=torch.float32, device=DEVICE)


def _upfirdn2d_parity(op, f, x, dtype, layout, rng):
    out = op(x, f, "cuda")
    dy = cuda_tensor(out.shape, dtype, rng, layout)
    (dx,) = torch.autograd.grad(out, x, dy)
    ref, (dx64,) = testing.forward_backward(
        lambda x_: op(x_, f.cpu(), "ref"), on_cpu_float64((x,)), dy.cpu().double()
    )
    assert out.device.type == "cuda" and out.dtype == dtype
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y")
    testing.assert_close(dx, dx64, dtype, "dx")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", UPFIRDN2D_SHAPES)
@pytest.mark.parametrize("config", UPFIRDN2D_CONFIGS)
def test_upfirdn2d_parity(dtype, layout, shape, config, rng):
    testing.require_backend("upfirdn2d", "cuda", DEVICE)
    op, taps = UPFIRDN2D_CONFIGS[config]
    x = cuda_tensor(shape, dtype, rng, layout, requires_grad=True)
    _upfirdn2d_parity(op, upfirdn2d_filter(taps), x, dtype, layout, rng)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("size", [65, 120])
def test_upfirdn2d_large_filters(layout, size, rng):
    """65 x 65 taps: weights computed per tap (no shared table); 120 x 120: no input tile fits
    in shared memory, so the kernel reads x from global memory."""
    f = torch.randn(size, size, generator=rng).to(DEVICE)
    x = cuda_tensor([1, 3, 9, 7], torch.float32, rng, layout, requires_grad=True)
    op = lambda x_, f_, impl: upfirdn2d(x_, f_, padding=size // 2, impl=impl)  # noqa: E731
    _upfirdn2d_parity(op, f, x, torch.float32, layout, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("config", ["upsample", "downsample", "general_2d"])
def test_upfirdn2d_r1_pattern(dtype, layout, config, rng):
    op, taps = UPFIRDN2D_CONFIGS[config]
    f = upfirdn2d_filter(taps)
    x = cuda_tensor([2, 16, 12, 10], dtype, rng, layout, requires_grad=True)
    (grad,) = testing.r1_pattern(lambda x_: op(x_, f, "cuda"), (x,))
    (grad64,) = testing.r1_pattern(lambda x_: op(x_, f.cpu(), "ref"), on_cpu_float64((x,)))
    testing.assert_close(grad, grad64, dtype, "R1 dx", low_precision_slack(dtype))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_upfirdn2d_nan_inf_empty_and_padding_only(layout, rng):
    f = setup_filter(BLUR, device=DEVICE)
    x = cuda_tensor([2, 3, 7, 6], torch.float32, rng, layout)
    x[0, 1, 1, 1], x[0, 2, 3, 4], x[-1, 0, 2, 2] = float("nan"), float("inf"), -float("inf")
    for up, down, padding in [(1, 1, 1), (2, 1, [2, 1, 0, 3]), (1, 2, [-1, 0, 0, -1])]:
        out = upfirdn2d(x, f, up, down, padding, impl="cuda")
        ref = upfirdn2d(x.cpu().double(), f.cpu(), up, down, padding, impl="ref")
        testing.assert_close(out, ref, what=f"up={up} down={down} with NaN/Inf inputs")
    assert upsample2d(torch.empty(0, 3, 4, 4, device=DEVICE), f, impl="cuda").shape == (0, 3, 8, 8)
    y = upfirdn2d(torch.empty(2, 3, 0, 4, device=DEVICE), f, padding=[0, 0, 3, 3], impl="cuda")
    assert torch.equal(y, torch.zeros(2, 3, 3, 1, device=DEVICE))


def test_upfirdn2d_opcheck(rng):
    fwd = upfirdn2d_registration.OP.extension.fwd
    f = setup_filter(BLUR, device=DEVICE)
    for layout in ("contiguous", "channels_last"):
        x = cuda_tensor([2, 5, 6, 7], torch.float32, rng, layout, requires_grad=True)
        torch.library.opcheck(fwd, (x, f, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0))
        torch.library.opcheck(fwd, (x, f, 1, 1, 2, 2, 1, 1, 1, 1, True, 1.0))


def test_upfirdn2d_direct_calls_check_their_arguments(rng):
    fwd = upfirdn2d_registration.OP.extension.fwd
    x = cuda_tensor([1, 2, 4, 4], torch.float32, rng)
    f = setup_filter(BLUR, device=DEVICE)
    with pytest.raises(RuntimeError, match="f is on cpu but x is on cuda"):
        fwd(x, f.cpu(), 1, 1, 1, 1, 0, 0, 0, 0, False, 1.0)
    with pytest.raises(RuntimeError, match="f must be float32"):
        fwd(x, f.double(), 1, 1, 1, 1, 0, 0, 0, 0, False, 1.0)
    with pytest.raises(RuntimeError, match="up and down must be >= 1"):
        fwd(x, f, 0, 1, 1, 1, 0, 0, 0, 0, False, 1.0)
    with pytest.raises(RuntimeError, match="needs at least one sample"):
        fwd(x, f, 1, 1, 1, 1, -2, -2, 0, 0, False, 1.0)


# --- layer_epilogue ----------------------------------------------------------------------------

# Plane sizes around the kernels' limits: one pass up to 16K elements forward / 8K backward
# (NCHW) and 512 / 2048 pixels (channels_last, 32 channels / one sector), two passes above.
EPILOGUE_SHAPES = [
    [4, 32, 4, 4],
    [2, 8, 32, 32],
    [2, 5, 7, 9],  # odd plane: scalar accesses
    [1, 3, 96, 96],  # 9216: one pass forward, two backward
    [1, 2, 160, 160],  # 25600: two passes both ways
    [2, 40, 40, 40],  # channels_last fp32 forward: one sector of channels per block
]
EPILOGUE_NAMES = ("x", "noise", "noise_strength", "bias", "scale", "style_bias")


def epilogue_inputs(shape, dtype, layout, rng, noise="batch", with_bias=True):
    n, c, h, w = shape

    def make(s, layout="contiguous", scale=1.0):
        return cuda_tensor(s, dtype, rng, layout, scale=scale, requires_grad=True)

    x = make(shape, layout, 2.0)
    noise_t = make([n if noise == "batch" else 1, 1, h, w]) if noise is not None else None
    strength = make([c]) if noise is not None else None
    bias = make([c]) if with_bias else None
    return x, noise_t, strength, bias, make([n, c]), make([n, c])


def _epilogue_parity(inputs, dtype, layout, rng):
    dy = cuda_tensor(inputs[0].shape, dtype, rng)
    out, grads = testing.forward_backward(lambda *a: layer_epilogue(*a, impl="cuda"), inputs, dy)
    ref, grads64 = testing.forward_backward(
        lambda *a: layer_epilogue(*a, impl="ref"), on_cpu_float64(inputs), dy.cpu().double()
    )
    assert out.device.type == "cuda" and out.dtype == dtype
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y")
    for g, g64, name in zip(grads, grads64, EPILOGUE_NAMES):
        assert (g is None) == (g64 is None), name
        if g is not None:
            testing.assert_close(g, g64, dtype, f"d{name}", 1.0 if name == "x" else 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", EPILOGUE_SHAPES)
def test_layer_epilogue_parity(dtype, layout, shape, rng):
    testing.require_backend("layer_epilogue", "cuda", DEVICE)
    inputs = epilogue_inputs(shape, dtype, layout, rng)
    _epilogue_parity(inputs, dtype, layout, rng)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("noise", ["batch", "shared", None])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("shape", [[3, 6, 8, 8], [2, 3, 130, 130]])
def test_layer_epilogue_optional_inputs(layout, noise, with_bias, shape, rng):
    inputs = epilogue_inputs(shape, torch.float32, layout, rng, noise, with_bias)
    _epilogue_parity(inputs, torch.float32, layout, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
def test_layer_epilogue_r1_pattern(dtype, layout, rng):
    shape = [2, 16, 8, 8]
    inputs = epilogue_inputs(shape, dtype, layout, rng)
    # sum_hw y does not depend on x, so weight the output to make R1's gradient non-zero.
    weight = testing.make_tensor(shape, torch.float64, generator=rng)

    def weighted(impl, device):
        w = weight.to(device)
        return lambda *a: layer_epilogue(*a, impl=impl) * w.to(a[0].dtype)

    grads = testing.r1_pattern(weighted("cuda", DEVICE), inputs)
    grads64 = testing.r1_pattern(weighted("ref", "cpu"), on_cpu_float64(inputs))
    for g, g64, name in zip(grads, grads64, EPILOGUE_NAMES):
        testing.assert_close(g, g64, dtype, f"R1 d{name}", low_precision_slack(dtype))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [[2, 3, 64, 64], [1, 2, 256, 256]])
def test_layer_epilogue_plane_with_a_large_mean(layout, shape, rng):
    """|mean| >> std in float32: the corrected two-pass statistics (one pass and chunked)
    keep the variance; E[u^2] - E[u]^2 would not."""
    offset = 1e2
    x = (testing.make_tensor(shape, torch.float64, generator=rng) + offset).float().to(DEVICE)
    x = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
    scale = torch.ones(shape[:2], device=DEVICE)
    args = (x, None, None, None, scale, torch.zeros_like(scale))
    _, _, rstd = epilogue_registration.OP.extension.fwd(*args, 1.0, 1.0, 1e-8)
    var = (x.double().cpu() - offset).var(dim=(2, 3), unbiased=False)
    testing.assert_close(rstd, torch.rsqrt(var + 1e-8), what="rstd")


def test_layer_epilogue_every_gradient_alone_and_deterministic(rng):
    """Each output_mask entry on its own (dnoise alone takes the acc_t dt buffer), for
    per-sample and shared noise, one-pass and chunked planes; repeated calls are bitwise
    equal."""
    for shape in ([3, 6, 8, 8], [2, 3, 100, 100]):
        for noise in ("batch", "shared"):
            for dtype in (torch.float32, torch.float16):
                inputs = epilogue_inputs(shape, dtype, "contiguous", rng, noise)
                x, nz, strength, bias, scale, style_bias = (t.detach() for t in inputs)
                y, mean, rstd = epilogue_registration.OP.extension.fwd(
                    x, nz, strength, bias, scale, style_bias, 0.2, 2**0.5, 1e-8
                )
                dy = cuda_tensor(shape, dtype, rng)
                full = [True] * 6
                args = (dy, x, nz, strength, bias, scale, mean, rstd, 0.2, 2**0.5)
                want = epilogue_registration.OP.extension.bwd(*args, full)
                again = epilogue_registration.OP.extension.bwd(*args, full)
                for a, b in zip(want, again):
                    assert torch.equal(a, b)
                for i in range(6):
                    mask = [j == i for j in range(6)]
                    got = epilogue_registration.OP.extension.bwd(*args, mask)
                    torch.testing.assert_close(got[i], want[i], rtol=0, atol=0)
                    assert all(got[j].numel() == 0 for j in range(6) if j != i)


def test_layer_epilogue_nan_and_empty(rng):
    for layout in ("contiguous", "channels_last"):
        inputs = list(epilogue_inputs([2, 4, 5, 5], torch.float32, layout, rng))
        with torch.no_grad():
            inputs[0][0, 1, 2, 2] = float("nan")
        out = layer_epilogue(*inputs, impl="cuda")
        ref = layer_epilogue(*on_cpu_float64(inputs), impl="ref")
        testing.assert_close(out, ref, what="y with a NaN input")
    for shape in ([0, 3, 4, 4], [2, 3, 0, 4]):
        inputs = epilogue_inputs(shape, torch.float32, "contiguous", rng)
        y = layer_epilogue(*inputs, impl="cuda")
        assert y.shape == tuple(shape)
        y.sum().backward()


def test_layer_epilogue_opcheck(rng):
    for layout in ("contiguous", "channels_last"):
        inputs = epilogue_inputs([2, 5, 6, 7], torch.float32, layout, rng)
        args = (*inputs, 0.2, 2**0.5, 1e-8)
        torch.library.opcheck(epilogue_registration.OP.extension.fwd, args)
        x, nz, strength, bias, scale, _ = (t.detach() for t in inputs)
        _, mean, rstd = epilogue_registration.OP.extension.fwd(
            *(t.detach() for t in inputs), *args[6:]
        )
        dy = cuda_tensor(x.shape, torch.float32, rng)
        torch.library.opcheck(
            epilogue_registration.OP.extension.bwd,
            (dy, x, nz, strength, bias, scale, mean, rstd, 0.2, 2**0.5, [True] * 6),
        )


def test_layer_epilogue_direct_calls_check_their_arguments(rng):
    inputs = [t.detach() for t in epilogue_inputs([2, 3, 4, 4], torch.float32, "contiguous", rng)]
    fwd = epilogue_registration.OP.extension.fwd
    bad_scale = inputs[:4] + [inputs[4].cpu(), inputs[5]]
    with pytest.raises(RuntimeError, match="scale is on cpu but x is on cuda"):
        fwd(*bad_scale, 0.2, 1.0, 1e-8)
    bad_noise = [inputs[0], inputs[1][:, :, :2], *inputs[2:]]
    with pytest.raises(RuntimeError, match="noise must have shape"):
        fwd(*bad_noise, 0.2, 1.0, 1e-8)
    with pytest.raises(RuntimeError, match="given together"):
        fwd(inputs[0], inputs[1], None, *inputs[3:], 0.2, 1.0, 1e-8)


# --- adain (the epilogue's kernels without noise and bias, identity activation) ---------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", EPILOGUE_SHAPES)
def test_adain_parity(dtype, layout, shape, rng):
    testing.require_backend("adain", "cuda", DEVICE)
    x = cuda_tensor(shape, dtype, rng, layout, scale=2.0, requires_grad=True)
    scale = cuda_tensor(shape[:2], dtype, rng, requires_grad=True)
    bias = cuda_tensor(shape[:2], dtype, rng, requires_grad=True)
    dy = cuda_tensor(shape, dtype, rng)
    out, grads = testing.forward_backward(lambda *a: adain(*a, impl="cuda"), (x, scale, bias), dy)
    ref, grads64 = testing.forward_backward(
        lambda *a: adain(*a, impl="ref"), on_cpu_float64((x, scale, bias)), dy.cpu().double()
    )
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y")
    for g, g64, name, slack in zip(grads, grads64, ("dx", "dscale", "dbias"), (1.0, 2.0, 2.0)):
        testing.assert_close(g, g64, dtype, name, slack)


def test_adain_r1_opcheck_and_direct_calls(rng):
    x = cuda_tensor([2, 16, 8, 8], torch.float32, rng, requires_grad=True)
    scale = cuda_tensor([2, 16], torch.float32, rng, requires_grad=True)
    bias = cuda_tensor([2, 16], torch.float32, rng, requires_grad=True)
    weight = testing.make_tensor(x.shape, torch.float64, generator=rng)

    def weighted(impl, device):
        return lambda *a: adain(*a, impl=impl) * weight.to(device, a[0].dtype)

    grads = testing.r1_pattern(weighted("cuda", DEVICE), (x, scale, bias))
    grads64 = testing.r1_pattern(weighted("ref", "cpu"), on_cpu_float64((x, scale, bias)))
    for g, g64, name in zip(grads, grads64, ("dx", "dscale", "dbias")):
        testing.assert_close(g, g64, what=f"R1 {name}")
    torch.library.opcheck(adain_registration.OP.extension.fwd, (x, scale, bias, 1e-8))
    with pytest.raises(RuntimeError, match=r"adain \(cuda\): bias is on cpu but x is on cuda"):
        adain_registration.OP.extension.fwd(x.detach(), scale.detach(), bias.detach().cpu(), 1e-8)


# --- noise_injection ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", [[4, 64, 4, 4], [2, 5, 7, 9], [1, 3, 80, 80], [2, 40, 16, 16]])
@pytest.mark.parametrize("shared", [False, True])
def test_noise_injection_parity(dtype, layout, shape, shared, rng):
    testing.require_backend("noise_injection", "cuda", DEVICE)
    n, c, h, w = shape
    x = cuda_tensor(shape, dtype, rng, layout, requires_grad=True)
    noise = cuda_tensor([1 if shared else n, 1, h, w], dtype, rng, requires_grad=True)
    strength = cuda_tensor([c], dtype, rng, requires_grad=True)
    dy = cuda_tensor(shape, dtype, rng)
    out, grads = testing.forward_backward(
        lambda *a: noise_injection(*a, impl="cuda"), (x, noise, strength), dy
    )
    ref, grads64 = testing.forward_backward(
        lambda *a: noise_injection(*a, impl="ref"),
        on_cpu_float64((x, noise, strength)),
        dy.cpu().double(),
    )
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y")
    for g, g64, name, slack in zip(grads, grads64, ("dx", "dnoise", "dstrength"), (1, 2, 2)):
        testing.assert_close(g, g64, dtype, name, slack)


def test_noise_injection_each_gradient_alone_and_direct_calls(rng):
    bwd = noise_registration.OP.extension.bwd
    dy = cuda_tensor([2, 6, 5, 5], torch.float32, rng)
    noise = cuda_tensor([2, 1, 5, 5], torch.float32, rng)
    strength = cuda_tensor([6], torch.float32, rng)
    both = bwd(dy, noise, strength, True, True)
    assert torch.equal(bwd(dy, noise, strength, True, False)[0], both[0])
    assert torch.equal(bwd(dy, noise, strength, False, True)[1], both[1])
    with pytest.raises(RuntimeError, match="strength is on cpu but x is on cuda"):
        noise_registration.OP.extension.fwd(dy, noise, strength.cpu())
    with pytest.raises(RuntimeError, match=r"noise must have shape \[N, 1, H, W\]"):
        noise_registration.OP.extension.fwd(dy, noise[:, :, :3], strength)
