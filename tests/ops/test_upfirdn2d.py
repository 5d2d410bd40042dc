"""upfirdn2d: reference vs first principles, setup_filter and the resampling helpers, the
adjoint, gradcheck/gradgradcheck, opcheck, backend parity (forward, backward, R1) over
dtypes/shapes/layouts, NaN/Inf, compile, bad input."""

import random
import warnings

import pytest
import torch

from stylegan_fast import FallbackWarning, _backend, testing
from stylegan_fast.ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from stylegan_fast.ops.upfirdn2d import registration

OP = "upfirdn2d"
CPU_IMPLS = testing.implemented_backends(OP, "cpu")
KERNEL_IMPLS = [i for i in CPU_IMPLS if i != "ref"]
BLUR = [1, 3, 3, 1]  # StyleGAN's resampling filter


def naive_upfirdn2d(x, f, up, down, padding, flip_filter, gain):
    """Steps (1)-(4) straight from the definition, one output pixel and tap at a time, in
    float64: insert zeros, pad (negative crops), true convolution ('valid'), keep every
    down-th sample. A 1-D filter is applied along both axes, i.e. as its outer product."""
    upx, upy = up
    downx, downy = down
    padx0, padx1, pady0, pady1 = padding
    x = x.double()
    f = f.double()
    if f.ndim == 1:
        f = torch.outer(f, f)
    f = f * gain
    N, C, H, W = x.shape
    fh, fw = f.shape

    def padded(i, j):
        """Sample (i, j) of the upsampled, padded image ([N, C])."""
        ui, uj = i - pady0, j - padx0  # position in the upsampled image
        if not (0 <= ui < H * upy and 0 <= uj < W * upx) or ui % upy or uj % upx:
            return torch.zeros(N, C, dtype=torch.float64)
        return x[:, :, ui // upy, uj // upx]

    out_h = (H * upy + pady0 + pady1 - fh) // downy + 1
    out_w = (W * upx + padx0 + padx1 - fw) // downx + 1
    y = torch.zeros(N, C, out_h, out_w, dtype=torch.float64)
    for oy in range(out_h):
        for ox in range(out_w):
            acc = torch.zeros(N, C, dtype=torch.float64)
            for a in range(fh):
                for b in range(fw):
                    # Convolution: tap (a, b) of the window meets f[fh-1-a, fw-1-b].
                    tap = f[a, b] if flip_filter else f[fh - 1 - a, fw - 1 - b]
                    acc += padded(oy * downy + a, ox * downx + b) * tap
            y[:, :, oy, ox] = acc
    return y


def random_config(rnd: random.Random, max_taps=5, max_size=7):
    """Random up/down (per axis), padding (incl. negative), filter (1-D/2-D, odd/even sizes),
    flip and gain, with an output of at least one sample for the input size it returns."""
    while True:
        up = (rnd.randint(1, 3), rnd.randint(1, 3))
        down = (rnd.randint(1, 3), rnd.randint(1, 3))
        padding = tuple(rnd.randint(-3, 4) for _ in range(4))
        separable = rnd.random() < 0.4
        fh = rnd.randint(1, max_taps)
        fw = fh if separable else rnd.randint(1, max_taps)
        H, W = rnd.randint(1, max_size - 1), rnd.randint(1, max_size)
        out_h = (H * up[1] + padding[2] + padding[3] - fh) // down[1] + 1
        out_w = (W * up[0] + padding[0] + padding[1] - fw) // down[0] + 1
        if out_h >= 1 and out_w >= 1:
            break
    g = torch.Generator().manual_seed(rnd.randint(0, 2**31))
    f = torch.randn([fh] if separable else [fh, fw], generator=g)
    return dict(
        hw=(H, W),
        f=f,
        up=up,
        down=down,
        padding=padding,
        flip_filter=rnd.random() < 0.5,
        gain=rnd.choice([1.0, rnd.uniform(-2, 2)]),
    )


def call(impl, f, **kw):
    return lambda x: upfirdn2d(x, f, impl=impl, **kw)


# --- reference vs first principles (float64) -------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_reference_matches_first_principles(seed, rng):
    cfg = random_config(random.Random(seed))
    x = testing.make_tensor([2, 3, *cfg.pop("hw")], torch.float64, generator=rng)
    f = cfg.pop("f")
    expected = naive_upfirdn2d(x, f, **cfg)
    out = upfirdn2d(x, f, impl="ref", **cfg)
    testing.assert_close(out, expected, what=f"seed={seed} f={list(f.shape)} {cfg}")


def test_reference_matches_first_principles_stylegan_resampling(rng):
    x = testing.make_tensor([1, 2, 5, 6], torch.float64, generator=rng)
    f = setup_filter(BLUR)
    for up, down, padding in [((2, 2), (1, 1), (2, 1, 2, 1)), ((1, 1), (2, 2), (1, 1, 1, 1))]:
        expected = naive_upfirdn2d(x, f, up, down, padding, False, 1.0)
        testing.assert_close(upfirdn2d(x, f, up, down, padding, impl="ref"), expected)


def test_setup_filter():
    blur = setup_filter(BLUR)
    outer = torch.outer(torch.tensor(BLUR), torch.tensor(BLUR)).float()
    assert blur.dtype == torch.float32 and blur.shape == (4, 4)  # < 8 taps: 2-D
    torch.testing.assert_close(blur, outer / 64)
    assert setup_filter(None).tolist() == [[1.0]]
    assert setup_filter(3.0).tolist() == [[1.0]]  # 0-d becomes 1-d, then normalised
    long = setup_filter(list(range(1, 9)))
    assert long.shape == (8,)  # >= 8 taps: separable
    assert long.sum().item() == pytest.approx(1.0)
    assert setup_filter(list(range(1, 9)), separable=False).shape == (8, 8)
    assert setup_filter([1, 2], separable=True).shape == (2,)
    raw = setup_filter([1, 2, 3], normalize=False)
    torch.testing.assert_close(
        raw, torch.outer(torch.tensor([1.0, 2, 3]), torch.tensor([1.0, 2, 3]))
    )
    flipped = setup_filter([[1, 2], [3, 4]], normalize=False, flip_filter=True)
    assert flipped.tolist() == [[4.0, 3.0], [2.0, 1.0]]
    # gain ** (ndim / 2): all of it on a 2-D filter, its square root on a separable one.
    torch.testing.assert_close(setup_filter(BLUR, gain=4), blur * 4)
    torch.testing.assert_close(setup_filter(list(range(1, 9)), gain=4), long * 2)
    assert setup_filter([1, 1], device="meta").device.type == "meta"
    with pytest.raises(ValueError, match="f must have 0, 1 or 2 dimensions"):
        setup_filter(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="at least one tap"):
        setup_filter([])
    with pytest.raises(ValueError, match="a separable filter must be 1-D"):
        setup_filter([[1, 2], [3, 4]], separable=True)
    with pytest.raises(ValueError, match="gain must be >= 0 for a separable filter"):
        setup_filter(list(range(1, 9)), gain=-1)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_resampling_helpers(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    x = testing.make_tensor([2, 3, 6, 10], torch.float64, generator=rng)
    f = setup_filter(BLUR)
    assert upsample2d(x, f, impl=impl).shape == (2, 3, 12, 20)
    assert upsample2d(x, f, up=[3, 1], impl=impl).shape == (2, 3, 6, 30)
    assert downsample2d(x, f, impl=impl).shape == (2, 3, 3, 5)
    assert filter2d(x, f, impl=impl).shape == x.shape
    assert filter2d(x, f, padding=[1, 2], impl=impl).shape == (2, 3, 10, 12)
    # Each is upfirdn2d with the documented padding (and gain for upsampling).
    torch.testing.assert_close(
        upsample2d(x, f, padding=1, gain=0.5, impl=impl),
        upfirdn2d(x, f, up=2, padding=[1 + 2, 1 + 1, 1 + 2, 1 + 1], gain=2.0, impl="ref"),
    )
    torch.testing.assert_close(
        downsample2d(x, f, down=[2, 1], impl=impl),
        upfirdn2d(x, f, down=[2, 1], padding=[1, 1, 2, 1], impl="ref"),
    )
    torch.testing.assert_close(
        filter2d(x, f, impl=impl), upfirdn2d(x, f, padding=[2, 1, 2, 1], impl="ref")
    )
    # With a normalised filter, a constant image stays constant away from the border.
    ones = torch.ones(1, 2, 12, 12, dtype=torch.float64)
    for fn in (upsample2d, downsample2d, filter2d):
        y = fn(ones, f, impl=impl)
        torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.ones_like(y[..., 2:-2, 2:-2]))
    assert torch.equal(upfirdn2d(x, None, impl=impl), x)  # no filter: the identity


@pytest.mark.parametrize("seed", range(20))
def test_adjoint_identity(seed, rng):
    """<upfirdn2d(x), y> == <x, adjoint(y)>, the adjoint being upfirdn2d with up and down
    swapped, the filter flipped and the padding of registration.adjoint_params."""
    cfg = random_config(random.Random(1000 + seed))
    H, W = cfg.pop("hw")
    f = cfg.pop("f")
    x = testing.make_tensor([2, 3, H, W], torch.float64, generator=rng)
    out = upfirdn2d(x, f, impl="ref", **cfg)
    y = testing.make_tensor(out.shape, torch.float64, generator=rng)
    up, down, padding, flip = registration.adjoint_params(
        H, W, out.shape[2], out.shape[3], f.shape[0], f.shape[-1],
        cfg["up"], cfg["down"], cfg["padding"], cfg["flip_filter"],
    )  # fmt: skip
    adj = upfirdn2d(y, f, up, down, padding, flip, cfg["gain"], impl="ref")
    assert adj.shape == x.shape
    torch.testing.assert_close((out * y).sum(), (x * adj).sum(), rtol=1e-12, atol=1e-12)


# --- gradcheck / gradgradcheck --------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("seed", range(6))
def test_gradcheck_and_gradgradcheck(impl, seed, rng):
    testing.require_backend(OP, impl, "cpu")
    # Small images: gradgradcheck of the eager reference costs seconds per case otherwise.
    cfg = random_config(random.Random(2000 + seed), max_taps=4, max_size=4)
    x = testing.make_tensor(
        [1, 2, *cfg.pop("hw")], torch.float64, generator=rng, requires_grad=True
    )
    fn = call(impl, cfg.pop("f"), **cfg)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_third_order_matches_reference(impl, rng):
    """Every order is the op again: R1's double backward and the order above it."""
    testing.require_backend(OP, impl, "cpu")
    x = testing.make_tensor([2, 3, 6, 5], torch.float64, generator=rng, requires_grad=True)
    f = setup_filter(BLUR)

    def third(impl_):
        y = downsample2d(x, f, impl=impl_)
        (g1,) = torch.autograd.grad((y * y).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad((g1 * g1).sum(), x, create_graph=True)
        return torch.autograd.grad((g2 * g2 * x).sum(), x)

    testing.assert_close(third(impl)[0], third("ref")[0], what="third-order gradient")


@pytest.mark.parametrize("taps", [[[1.0, -2.0, 0.5], [3.0, 0.0, 1.0]], [1.0, 2.0, -1.0]])
def test_filter_gradient_goes_through_the_reference(taps, rng, monkeypatch):
    """A filter that requires grad is served by the reference (auto warns and falls back;
    an explicit kernel impl refuses), and its gradient is right: y is linear in a 2-D f and
    quadratic in a separable one, so (Euler) <grad_f, f> = <dy, y> * degree."""
    monkeypatch.setattr(_backend, "_WARNED", set())
    x = testing.make_tensor([2, 3, 5, 6], torch.float64, generator=rng)
    f = torch.tensor(taps, requires_grad=True)
    with pytest.warns(FallbackWarning, match="give f no gradient"):
        y = upfirdn2d(x, f, up=2, padding=1)
    dy = testing.make_tensor(y.shape, torch.float64, generator=rng)
    (grad_f,) = torch.autograd.grad(y, f, dy)
    degree = 1 if f.ndim == 2 else 2
    torch.testing.assert_close(
        (grad_f.double() * f.detach().double()).sum(), (dy * y).sum() * degree, rtol=1e-6, atol=0
    )
    for impl in KERNEL_IMPLS:
        with pytest.raises(NotImplementedError, match="give f no gradient"):
            upfirdn2d(x, f, impl=impl)


# --- opcheck of the registered op -------------------------------------------------------------

OPCHECK_PARAMS = [
    # f, (upx, upy, downx, downy, padx0, padx1, pady0, pady1), flip_filter, gain
    (setup_filter(BLUR), (2, 2, 1, 1, 2, 1, 2, 1), False, 4.0),
    (setup_filter(BLUR), (1, 1, 2, 2, 1, 1, 1, 1), False, 1.0),
    (torch.tensor([1.0, -2.0, 3.0, 0.5, 1.0]), (3, 1, 1, 2, -1, 2, 3, 0), True, -0.7),
    (torch.tensor([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0]]), (1, 2, 3, 1, 2, 0, -1, 4), False, 1.3),
]


def _kernels(impl):
    return registration.TRITON if impl == "triton" else registration.EXTENSION


# One shape per traversal the layout reaches: C = 16 channels_last runs in place, W = 40
# contiguous runs the NCHW rows, the rest is gathered.
OPCHECK_SHAPES = {
    "contiguous": [[2, 3, 5, 7], [1, 2, 3, 40]],
    "channels_last": [[2, 3, 5, 7], [1, 16, 4, 6]],
    "noncontiguous": [[2, 3, 5, 7]],
}


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(impl, layout, dtype, rng):
    testing.require_backend(OP, impl, "cpu")
    fwd = _kernels(impl).fwd
    for shape in OPCHECK_SHAPES[layout]:
        x = testing.make_tensor(shape, dtype, layout=layout, generator=rng, requires_grad=True)
        for f, params, flip, gain in OPCHECK_PARAMS:
            torch.library.opcheck(fwd, (x, f, *params, flip, gain))


# --- parity of every backend against the float64 reference ------------------------------------

SHAPES = [
    [1, 3, 5, 7],  # N = 1, odd C, H != W: the gathered (lanes) traversal
    [2, 16, 6, 9],  # C = 16: channels_last float/double in place
    [2, 5, 6, 37],  # wide rows: the NCHW rows traversal
]

CONFIGS = {
    "upsample": (lambda x, f, impl: upsample2d(x, f, impl=impl), BLUR),
    "downsample": (lambda x, f, impl: downsample2d(x, f, impl=impl), BLUR),
    "blur": (lambda x, f, impl: filter2d(x, f, impl=impl), BLUR),
    "general_2d": (
        lambda x, f, impl: upfirdn2d(x, f, [3, 1], [1, 2], [-1, 2, 3, 0], True, 0.8, impl=impl),
        [[1.0, -2.0, 0.5, 2.0, 1.0], [3.0, 0.0, 1.0, -1.0, 0.5], [0.5, 1.0, 2.0, 1.0, -0.5]],
    ),
    "separable_8": (
        lambda x, f, impl: upfirdn2d(x, f, [2, 2], [3, 1], [4, 3, 2, 5], False, 2.0, impl=impl),
        list(range(1, 9)),
    ),
}


def _filter(taps):
    return setup_filter(taps) if taps is BLUR else torch.tensor(taps, dtype=torch.float32)


def _slack(impl, dtype):
    # The eager reference rounds in fp16/bf16 after each convolution pass, and torch's CPU
    # depthwise-convolution backward in fp16/bf16 rounds partial sums (2.4x the error of one
    # rounding, measured); kernels accumulate in float and round once.
    return 4.0 if impl == "ref" and dtype in (torch.float16, torch.bfloat16) else 1.0


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("config", CONFIGS)
def test_parity_forward_backward(impl, dtype, layout, shape, config, rng):
    testing.require_backend(OP, impl, "cpu")
    op, taps = CONFIGS[config]
    f = _filter(taps)
    x = testing.make_tensor(shape, dtype, layout=layout, generator=rng, requires_grad=True)
    out = op(x, f, impl)
    dy = testing.make_tensor(out.shape, dtype, layout=layout, generator=rng)
    (dx,) = torch.autograd.grad(out, x, dy)
    (x64,) = testing.to_float64((x,))
    ref, (dx64,) = testing.forward_backward(lambda x_: op(x_, f, "ref"), (x64,), dy.double())
    assert out.dtype == dtype
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    slack = _slack(impl, dtype)
    testing.assert_close(out, ref, dtype, "y", slack)
    testing.assert_close(dx, dx64, dtype, "dx", slack)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("config", ["downsample", "general_2d", "separable_8"])
def test_parity_r1_pattern(impl, dtype, layout, config, rng):
    testing.require_backend(OP, impl, "cpu")
    op, taps = CONFIGS[config]
    f = _filter(taps)
    x = testing.make_tensor([2, 16, 6, 9], dtype, layout=layout, generator=rng, requires_grad=True)
    (grad,) = testing.r1_pattern(lambda x_: op(x_, f, impl), (x,))
    (grad64,) = testing.r1_pattern(lambda x_: op(x_, f, "ref"), testing.to_float64((x,)))
    # Low precision: the loss itself is built from rounded outputs and gradients.
    slack = 1.0 if dtype in (torch.float32, torch.float64) else 4.0
    testing.assert_close(grad, grad64, dtype, "R1 dx", slack)


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_float64_filter_that_is_nearly_an_outer_product(impl, rng):
    """setup_filter's float32 outer product of taps that do not divide exactly is not an
    outer product to double precision: a float64 kernel must not treat it as separable."""
    testing.require_backend(OP, impl, "cpu")
    f = setup_filter([1, 2, 3, 4, 5])
    x = testing.make_tensor([2, 3, 7, 40], torch.float64, generator=rng)
    for layout in testing.LAYOUTS:
        xl = testing.make_tensor([2, 16, 7, 40], torch.float64, layout=layout, generator=rng)
        for inp in (x, xl):
            ref = upfirdn2d(inp, f, up=2, padding=2, impl="ref")
            testing.assert_close(upfirdn2d(inp, f, up=2, padding=2, impl=impl), ref)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize(
    "taps",
    [
        BLUR,
        [[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 0.0, 1.0]],  # zero taps, not an outer product
        [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [2.0, 0.0, 2.0]],  # zero taps, an outer product
        [1.0, 0.0, -2.0],  # separable, a zero tap
    ],
)
def test_nan_and_inf_propagate_like_reference(impl, layout, taps, rng):
    """Every tap that lands on a real sample is multiplied (zero taps included), so NaN and Inf
    reach exactly the outputs they reach in the reference's convolution."""
    testing.require_backend(OP, impl, "cpu")
    f = _filter(taps)
    for shape in ([2, 3, 7, 6], [1, 16, 5, 40]):
        x = testing.make_tensor(shape, torch.float32, layout=layout, generator=rng)
        with torch.no_grad():
            x[0, 1, 1, 1] = float("nan")
            x[0, 2, 3, 4] = float("inf")
            x[0, 2, 4, 3] = -float("inf")
            x[-1, 0, 2, 2] = float("inf")
        for up, down, padding in [(1, 1, 1), (2, 1, [2, 1, 0, 3]), (1, 2, [-1, 0, 0, -1])]:
            out = upfirdn2d(x, f, up, down, padding, impl=impl)
            ref = upfirdn2d(x.double(), f, up, down, padding, impl="ref")
            assert torch.isnan(ref).any()
            testing.assert_close(out, ref, what=f"up={up} down={down} with NaN/Inf inputs")


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_empty_tensors(impl):
    testing.require_backend(OP, impl, "cpu")
    f = setup_filter(BLUR)
    for shape in ([0, 3, 4, 4], [2, 0, 4, 4]):
        x = torch.empty(shape, requires_grad=True)
        y = upsample2d(x, f, impl=impl)
        assert y.shape == (shape[0], shape[1], 8, 8)
        y.sum().backward()
        assert x.grad.shape == x.shape


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_zero_sized_image_pads_to_zeros(impl):
    """An empty image padded to a non-empty one reads no sample: all outputs are zero."""
    testing.require_backend(OP, impl, "cpu")
    x = torch.empty(2, 3, 0, 4)
    y = upfirdn2d(x, setup_filter(BLUR), padding=[0, 0, 3, 3], impl=impl)
    assert torch.equal(y, torch.zeros(2, 3, 3, 1))


# --- torch.compile ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_compile_fullgraph_matches_eager(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    x = testing.make_tensor([2, 3, 8, 6], torch.float32, generator=rng, requires_grad=True)
    f = setup_filter(BLUR)

    def layer(x):
        return downsample2d(upsample2d(x, f, impl=impl), f, impl=impl).square().mean()

    compiled = torch.compile(layer, fullgraph=True)
    got, (got_grad,) = testing.forward_backward(compiled, (x,), torch.tensor(1.0))
    want, (want_grad,) = testing.forward_backward(layer, (x,), torch.tensor(1.0))
    testing.assert_close(got, want.double(), what="compiled output")
    testing.assert_close(got_grad, want_grad.double(), what="compiled gradient")


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    x = torch.randn(2, 3, 4, 4)
    f = setup_filter(BLUR)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        upfirdn2d([1.0], f)
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        upfirdn2d(torch.ones(2, 3, 4, 4, dtype=torch.int32), f)
    with pytest.raises(ValueError, match=r"x must have shape \[N, C, H, W\], got \[3, 4, 4\]"):
        upfirdn2d(torch.randn(3, 4, 4), f)
    with pytest.raises(ValueError, match=r"f must have shape \[ft\] \(separable\) or \[fh, fw\]"):
        upfirdn2d(x, torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="f must have at least one tap"):
        upfirdn2d(x, torch.ones(0))
    with pytest.raises(TypeError, match="f must be float32"):
        upfirdn2d(x, f.double())
    with pytest.raises(TypeError, match="f must be a torch.Tensor"):
        upfirdn2d(x, [1.0, 2.0])
    with pytest.raises(ValueError, match="f is on meta but x is on cpu"):
        upfirdn2d(x, f.to("meta"))
    with pytest.raises(ValueError, match="up must be >= 1"):
        upfirdn2d(x, f, up=0)
    with pytest.raises(ValueError, match="down must be >= 1"):
        upfirdn2d(x, f, down=[2, -1])
    with pytest.raises(ValueError, match=r"up must be an int or \[upx, upy\]"):
        upfirdn2d(x, f, up=[1, 2, 3])
    with pytest.raises(TypeError, match="up must be an int"):
        upfirdn2d(x, f, up=2.0)
    with pytest.raises(ValueError, match=r"padding must be an int, \[x, y\] or \[x0, x1, y0, y1\]"):
        upfirdn2d(x, f, padding=[1, 2, 3])
    with pytest.raises(ValueError, match=r"the output would be 0x1 \(H x W\)"):
        upfirdn2d(x, f, padding=[0, 0, -1, 0])
    with pytest.raises(ValueError, match="the output would be"):
        downsample2d(x, f, padding=-3)
    with pytest.raises(TypeError, match="flip_filter must be a bool"):
        upfirdn2d(x, f, flip_filter=1)
    with pytest.raises(TypeError, match="gain must be a real number"):
        upfirdn2d(x, f, gain="2")
    with pytest.raises(ValueError, match="impl must be one of"):
        upfirdn2d(x, f, impl="fast")
    with pytest.raises(ValueError, match=r"upsample2d: f must have shape"):
        upsample2d(x, torch.ones(1, 1, 1))


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_registered_op_checks_its_inputs(impl):
    """A direct torch.ops call with bad input raises instead of crashing."""
    testing.require_backend(OP, impl, "cpu")
    fwd = _kernels(impl).fwd
    x, f = torch.randn(2, 3, 4, 4), setup_filter(BLUR)
    params = (1, 1, 1, 1, 2, 1, 2, 1, False, 1.0)
    with pytest.raises(RuntimeError, match=r"f must have shape \[ft\]"):
        fwd(x, torch.ones(2, 2, 2), *params)
    with pytest.raises(RuntimeError, match="up and down must be >= 1"):
        fwd(x, f, 0, 1, 1, 1, 2, 1, 2, 1, False, 1.0)
    with pytest.raises(RuntimeError, match="it needs at least one sample"):
        fwd(x, f, 1, 1, 1, 1, -2, -2, 0, 0, False, 1.0)
    with pytest.raises(RuntimeError, match=r"x must have shape \[N, C, H, W\]"):
        fwd(torch.randn(3, 4, 4), f, *params)
    with pytest.raises(RuntimeError, match="f must be float32"):
        fwd(x, f.double(), *params)


def test_unavailable_impl_lists_every_backend_reason():
    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(NotImplementedError) as info:
        upfirdn2d(x, None, impl="cuda")
    message = str(info.value)
    assert "impl='cuda' cannot serve these inputs (cpu tensors): runs CUDA tensors only" in message
    for backend in _backend.BACKENDS:
        assert f"  {backend}: " in message


def test_env_variable_selects_impl(monkeypatch):
    x = torch.randn(2, 3, 4, 4)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_UPFIRDN2D", "cuda")
    with pytest.raises(NotImplementedError, match="impl='cuda'"):
        filter2d(x, None)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_UPFIRDN2D", "ref")
    monkeypatch.setenv("STYLEGAN_FAST_IMPL", "cuda")
    assert torch.equal(filter2d(x, None), x)  # the per-op variable wins


def test_auto_fallback_warns_once(monkeypatch):
    monkeypatch.setitem(_backend._STATIC_REASONS, (OP, "cpp", "cpu"), "pretend it is missing")
    monkeypatch.setattr(_backend, "_WARNED", set())
    x = torch.randn(2, 3, 4, 4)
    with pytest.warns(FallbackWarning, match="uses impl='ref'.*pretend it is missing"):
        filter2d(x, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        filter2d(x, None)  # a second call stays quiet
