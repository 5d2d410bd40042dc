"""upfirdn2d: reference vs first principles, setup_filter and the resampling helpers, the
adjoint, gradcheck/gradgradcheck, opcheck, backend parity (forward, backward, R1) over
dtypes/shapes/layouts, NaN/Inf, compile, bad input."""

import random
import warnings

import pytest
import torch

from stylegan_fast import FallbackWarning, _backend, testing
from stylegan_fast.ops import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d
from stylegan_fast.ops.upfirdn2d import geometry, registration

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
    swapped, the filter flipped and the padding of geometry.adjoint_params."""
    cfg = random_config(random.Random(1000 + seed))
    H, W = cfg.pop("hw")
    f = cfg.pop("f")
    x = testing.make_tensor([2, 3, H, W], torch.float64, generator=rng)
    out = upfirdn2d(x, f, impl="ref", **cfg)
    y = testing.make_tensor(out.shape, torch.float64, generator=rng)
    up, down, padding, flip = geometry.adjoint_params(
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
    # Triton under the interpreter costs ~0.1 s a call: its Jacobians are checked along random
    # directions (fast_mode) instead of column by column (hundreds of calls per case).
    fast = impl == "triton"
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=fast)
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=fast)


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
    return registration.OP.kernels(impl)


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
    shapes, cases = OPCHECK_SHAPES[layout], OPCHECK_PARAMS
    if impl == "triton":
        # The interpreter makes each opcheck ~5 s: one shape (the Triton kernel has no
        # per-shape traversals) and two parameter sets (StyleGAN's upsampling, whose backward
        # is its downsampling, and a general 2-D filter); parity tests cover the rest.
        shapes, cases = shapes[:1], [OPCHECK_PARAMS[0], OPCHECK_PARAMS[3]]
    for shape in shapes:
        x = testing.make_tensor(shape, dtype, layout=layout, generator=rng, requires_grad=True)
        for f, params, flip, gain in cases:
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


def _parity_cases():
    """Every impl x config x shape x layout x dtype, except that Triton (~0.1-0.5 s a call under
    the interpreter) runs one shape per (config, layout, dtype), rotating so each config meets
    every shape: every dtype and layout stays covered."""
    cases = []
    for ci, config in enumerate(CONFIGS):
        for si, shape in enumerate(SHAPES):
            for li, layout in enumerate(testing.LAYOUTS):
                for di, dtype in enumerate(testing.FLOAT_DTYPES):
                    for impl in CPU_IMPLS:
                        if impl == "triton" and si != (ci + li + di) % len(SHAPES):
                            continue
                        name = str(dtype).removeprefix("torch.")
                        cases.append(
                            pytest.param(
                                impl,
                                dtype,
                                layout,
                                shape,
                                config,
                                id=f"{config}-shape{si}-{layout}-{name}-{impl}",
                            )  # fmt: skip
                        )
    return cases


@pytest.mark.parametrize("impl, dtype, layout, shape, config", _parity_cases())
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


def _r1_cases():
    """Every impl x config x layout x dtype, except that Triton (interpreter time) runs fp16
    and bf16 on StyleGAN's downsampling only (the discriminator's R1 case)."""
    cases = []
    for config in ["downsample", "general_2d", "separable_8"]:
        for layout in testing.LAYOUTS:
            for dtype in testing.FLOAT_DTYPES:
                for impl in CPU_IMPLS:
                    low = dtype in (torch.float16, torch.bfloat16)
                    if impl == "triton" and low and config != "downsample":
                        continue
                    name = str(dtype).removeprefix("torch.")
                    cases.append(
                        pytest.param(
                            impl, dtype, layout, config, id=f"{config}-{layout}-{name}-{impl}"
                        )
                    )
    return cases


@pytest.mark.parametrize("impl, dtype, layout, config", _r1_cases())
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


# --- the Triton kernel's polyphase tables, tiling and limits -----------------------------------


@pytest.mark.parametrize("up", [1, 2, 3])
@pytest.mark.parametrize("down", [1, 2, 3])
def test_triton_axis_plan_matches_definition(up, down):
    """Each phase's (tap, input) pairs from triton.axis_plan are exactly the pairs of the
    definition y[m] = sum_k x[k] * g[k * up + pad0 - m * down] with 0 <= tap < taps."""
    kernels = pytest.importorskip("stylegan_fast.ops.upfirdn2d.triton")
    for taps in range(1, 7):
        for pad0 in range(-4, 6):
            plan = kernels.axis_plan(up, down, taps, pad0)
            assert len(plan.phases) == up
            for mb in range(-2, 4):
                for r, (a0, slot0, count) in enumerate(plan.phases):
                    m = mb * up + r
                    got = {(a0 + j * up, mb * down + plan.offset + slot0 + j) for j in range(count)}
                    want = {
                        (k * up + pad0 - m * down, k)
                        for k in range(-20, 20)
                        if 0 <= k * up + pad0 - m * down < taps
                    }
                    assert got == want, (up, down, taps, pad0, m)
                    assert all(0 <= slot0 + j < plan.window for j in range(count))


TILING_CASES = {
    # name: (up, down, padding, flip, gain, taps): the StyleGAN resampling, its backward
    # paddings, and general factors.
    "upsample": ((2, 2), (1, 1), (2, 1, 2, 1), False, 4.0, BLUR),
    "downsample": ((1, 1), (2, 2), (1, 1, 1, 1), False, 1.0, BLUR),
    "blur_backward": ((1, 1), (1, 1), (1, 2, 1, 2), True, 1.0, BLUR),
    "blur_3tap": ((1, 1), (1, 1), (1, 1, 1, 1), False, 1.0, [1.0, 2.0, 1.0]),
    "general": ((3, 2), (2, 3), (-1, 3, 4, 0), True, -0.7, [[1.0, -2.0, 0.5], [3.0, 0.0, 1.0]]),
}


def _tiny_launch(**kwargs):
    """A Triton launch split into as many programs as the tensor allows: 2 lanes x 4 base
    columns per tile, 3 base rows per band."""
    from stylegan_fast.ops.upfirdn2d import triton as kernels

    return kernels.Launch(block_lanes=2, block_cols=4, rows_per_band=3, num_warps=1)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("case", TILING_CASES)
def test_triton_multi_program_tiling(layout, case, rng, monkeypatch):
    """Tiles that split lanes, columns and rows across programs (lane-block and column-block
    edges, band prologues, the row prefetch at a band's end) give the reference's result; the
    interpreter otherwise runs one program per test tensor."""
    testing.require_backend(OP, "triton", "cpu")
    from stylegan_fast.ops.upfirdn2d import triton as kernels

    monkeypatch.setattr(kernels, "launch_config", _tiny_launch)
    up, down, padding, flip, gain, taps = TILING_CASES[case]
    f = _filter(taps)
    x = testing.make_tensor([2, 3, 5, 9], torch.float64, layout=layout, generator=rng)
    out = upfirdn2d(x, f, up, down, padding, flip, gain, impl="triton")
    testing.assert_close(out, upfirdn2d(x, f, up, down, padding, flip, gain, impl="ref"))
    assert testing.is_layout(out, layout)


def test_triton_cuda_launch_config():
    """The CUDA launch configuration (computed here without a GPU, for an H100's 132 SMs and 4
    resident programs per SM: a wave of 528 programs): power-of-two tiles of at most 512 base
    positions (16 bytes per thread per load, fewer for big windows), lanes shrunk and bands of
    >= 16 rows split only while the grid is short of a wave, int32-safe lane blocks."""
    kernels = pytest.importorskip("stylegan_fast.ops.upfirdn2d.triton")

    def config(**kw):
        args = dict(on_cuda=True, sms=132, programs_per_sm=lambda launch: 4, element_size=4,
                    channels_last=False, lanes=64, lane_stride=256 * 256, groups=1,
                    base_rows=256, base_cols=256, window_values=12)  # fmt: skip
        args.update(kw)
        return kernels.launch_config(**args)

    c = config()  # upsample2d fp32 NCHW, 512 -> 1024 wide: a row strip of 256 base columns
    assert (c.block_lanes, c.block_cols, c.num_warps) == (1, 256, 4)  # 64 planes, 64 programs
    assert c.rows_per_band == 29  # x 9 bands = 576 programs: the first grid to reach 528
    c = config(lanes=4096)  # many planes: 2 per tile, 2048 programs, whole-height bands
    assert (c.block_lanes, c.block_cols, c.rows_per_band) == (2, 256, 256)
    c = config(base_cols=4, base_rows=4, lanes=32 * 512)  # 4x4 planes: 128 planes per tile
    assert (c.block_lanes, c.block_cols, c.rows_per_band) == (32, 4, 4)  # ... cut to 32: 512
    c = config(channels_last=True, lanes=512, groups=32, lane_stride=1, window_values=24)
    assert (c.block_lanes, c.block_cols) == (256, 1)  # 2 floats per thread
    c = config(element_size=2, window_values=4, lanes=4096)  # fp16, small window: 8 halves
    assert c.block_lanes * c.block_cols == 1024
    c = config(lanes=4, base_cols=2, base_rows=4096, lane_stride=2**30)
    assert c.block_lanes == 1  # two planes of 2^30 elements would overflow int32 offsets
    assert c.rows_per_band == 32  # 4096 rows, 4 programs: 128 bands make 512, 132 the wave


def test_triton_cuda_launch_config_follows_occupancy():
    """The grid is sized by the compiled kernel's resident programs per SM, asked for the
    first tile and, when the lanes shrink, the last: more programs per SM, more programs."""
    kernels = pytest.importorskip("stylegan_fast.ops.upfirdn2d.triton")
    asked = []

    def config(programs_per_sm, **kw):
        def occupancy(launch):
            asked.append((launch.block_lanes, launch.block_cols))
            return programs_per_sm

        args = dict(on_cuda=True, sms=132, programs_per_sm=occupancy, element_size=4,
                    channels_last=False, lanes=64, lane_stride=256 * 256, groups=1,
                    base_rows=256, base_cols=256, window_values=12)  # fmt: skip
        args.update(kw)
        return kernels.launch_config(**args)

    c = config(4)
    assert asked == [(2, 256), (1, 256)]  # the first tile, then the one launched
    for programs_per_sm in (2, 4, 6):
        c = config(programs_per_sm)
        bands = -(-256 // c.rows_per_band)
        assert 64 * bands >= 132 * programs_per_sm > 64 * (bands - 1)  # the first full wave
    assert config(12).rows_per_band == 16  # a wave of 1584 would need bands under 16 rows
    asked.clear()
    config(4, lanes=4096)  # 2048 programs: more than a wave, nothing shrinks
    assert asked == [(2, 256)]


def test_triton_runs_the_cuda_launch_config(rng, monkeypatch):
    """The kernel with the CUDA configuration (several bands: 1 SM holding the default 4
    programs asks for 4), on the interpreter."""
    testing.require_backend(OP, "triton", "cpu")
    from stylegan_fast.ops.upfirdn2d import triton as kernels

    real = kernels.launch_config
    monkeypatch.setattr(
        kernels, "launch_config", lambda **kw: real(**{**kw, "on_cuda": True, "sms": 1})
    )
    f = setup_filter(BLUR)
    for layout in ("contiguous", "channels_last"):
        x = testing.make_tensor([1, 4, 40, 6], torch.float32, layout=layout, generator=rng)
        for fn in (upsample2d, downsample2d, filter2d):
            testing.assert_close(fn(x, f, impl="triton"), fn(x.double(), f, impl="ref"))


def test_triton_refuses_what_it_does_not_unroll():
    """Filters over 8 taps per axis and factors over 8 are refused with the reason (explicit
    impl raises; the registered op raises too), and served by the other backends."""
    x = torch.randn(1, 2, 12, 12)
    long_filter = setup_filter(list(range(1, 10)))  # 9 taps, separable
    with pytest.raises(NotImplementedError, match="serves at most 8 per axis"):
        upfirdn2d(x, long_filter, impl="triton")
    with pytest.raises(NotImplementedError, match="up and down factors of at most 8"):
        upfirdn2d(x, None, up=[9, 1], impl="triton")
    with pytest.raises(RuntimeError, match="serves at most 8 per axis"):
        registration.OP.triton.fwd(x, long_filter, 1, 1, 1, 1, 4, 4, 4, 4, False, 1.0)
    assert geometry.triton_reason(8, 8, (8, 8), (8, 8)) is None
    torch.testing.assert_close(
        upfirdn2d(x, long_filter, padding=4), upfirdn2d(x, long_filter, padding=4, impl="ref")
    )


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


# --- GPU (skipped without CUDA): Triton on CUDA tensors against the float64 reference ---------

# StyleGAN's (C, resolution) pairs (issue 3), at N = 2.
STYLEGAN_SHAPES = [(512, 8), (512, 32), (512, 64), (256, 128), (128, 256), (64, 512), (32, 1024)]
GPU_DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.cuda
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", GPU_DTYPES)
@pytest.mark.parametrize("channels, resolution", STYLEGAN_SHAPES)
def test_cuda_triton_stylegan_parity(channels, resolution, dtype, layout):
    """upsample2d into, downsample2d and filter2d at each StyleGAN resolution with the 4x4
    filter: forward and backward against float64, R1 through the downsampling."""
    testing.require_backend(OP, "triton", "cuda")
    device = "cuda"
    gen = torch.Generator().manual_seed(resolution * 7 + channels)
    f = setup_filter(BLUR, device=device)
    ops = {
        "upsample": (upsample2d, resolution // 2),
        "downsample": (downsample2d, resolution),
        "blur": (filter2d, resolution),
    }
    for name, (fn, size) in ops.items():
        x = testing.make_tensor([2, channels, size, size], dtype, device, layout, gen)
        x.requires_grad_(True)
        out = fn(x, f, impl="triton")
        dy = testing.make_tensor(out.shape, dtype, device, layout, gen)
        (dx,) = torch.autograd.grad(out, x, dy)
        (x64,) = testing.to_float64((x,))
        ref, (dx64,) = testing.forward_backward(
            lambda x_, fn=fn: fn(x_, f, impl="ref"), (x64,), dy.double()
        )
        assert testing.is_layout(out, layout)
        testing.assert_close(out, ref, dtype, f"{name} y")
        testing.assert_close(dx, dx64, dtype, f"{name} dx")
    x = testing.make_tensor([2, channels, resolution, resolution], dtype, device, layout, gen)
    x.requires_grad_(True)
    (grad,) = testing.r1_pattern(lambda x_: downsample2d(x_, f, impl="triton"), (x,))
    (grad64,) = testing.r1_pattern(
        lambda x_: downsample2d(x_, f, impl="ref"), testing.to_float64((x,))
    )
    slack = 1.0 if dtype == torch.float32 else 4.0
    testing.assert_close(grad, grad64, dtype, "R1 dx", slack)


@pytest.mark.cuda
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("dtype", GPU_DTYPES + [torch.float64])
@pytest.mark.parametrize("config", CONFIGS)
def test_cuda_triton_general_parity(config, dtype, layout):
    """The general configurations (odd sizes, negative padding, 3x5 and 8-tap filters) on
    CUDA, at a size that spans several tiles and row bands."""
    testing.require_backend(OP, "triton", "cuda")
    gen = torch.Generator().manual_seed(11)
    op, taps = CONFIGS[config]
    f = _filter(taps).cuda()
    x = testing.make_tensor([3, 40, 67, 301], dtype, "cuda", layout, gen, requires_grad=True)
    out = op(x, f, "triton")
    dy = testing.make_tensor(out.shape, dtype, "cuda", layout, gen)
    (dx,) = torch.autograd.grad(out, x, dy)
    (x64,) = testing.to_float64((x,))
    ref, (dx64,) = testing.forward_backward(lambda x_: op(x_, f, "ref"), (x64,), dy.double())
    testing.assert_close(out, ref, dtype, "y")
    testing.assert_close(dx, dx64, dtype, "dx")


@pytest.mark.cuda
def test_cuda_triton_compile_fullgraph():
    testing.require_backend(OP, "triton", "cuda")
    gen = torch.Generator().manual_seed(3)
    x = testing.make_tensor([2, 8, 16, 16], torch.float32, "cuda", generator=gen)
    x.requires_grad_(True)
    f = setup_filter(BLUR, device="cuda")

    def layer(x):
        return downsample2d(upsample2d(x, f, impl="triton"), f, impl="triton").square().mean()

    compiled = torch.compile(layer, fullgraph=True)
    got, (got_grad,) = testing.forward_backward(compiled, (x,), torch.tensor(1.0, device="cuda"))
    want, (want_grad,) = testing.forward_backward(layer, (x,), torch.tensor(1.0, device="cuda"))
    testing.assert_close(got, want.double(), what="compiled output")
    testing.assert_close(got_grad, want_grad.double(), what="compiled gradient")
