"""noise_injection: reference vs first principles, gradcheck/gradgradcheck, opcheck, backend
parity (forward, backward, R1) over dtypes/shapes/layouts and both noise shapes, drawn noise,
compile, bad input."""

import warnings

import pytest
import torch

from stylegan_fast import FallbackWarning, _backend, testing
from stylegan_fast.ops import noise_injection
from stylegan_fast.ops.noise_injection import registration

OP = "noise_injection"
CPU_IMPLS = testing.implemented_backends(OP, "cpu")
KERNEL_IMPLS = [i for i in CPU_IMPLS if i != "ref"]
# "per_sample": noise [N, 1, H, W]; "shared": one [1, 1, H, W] image for the whole batch.
NOISE_KINDS = ("per_sample", "shared")


def call(impl):
    return lambda x, noise, strength: noise_injection(x, noise, strength, impl=impl)


def fast_gradcheck(impl):
    """Under TRITON_INTERPRET=1 a kernel launch costs tens of ms, and a full gradgradcheck
    launches hundreds of them: the Triton backend checks a random projection of the Jacobian
    instead (gradcheck's fast mode, a handful of launches). Its gradients are also compared
    element by element with the float64 reference in the parity tests below."""
    return impl == "triton"


def make_inputs(shape, dtype, layout, rng, noise_kind, requires_grad=True):
    n, c, h, w = shape
    x = testing.make_tensor(shape, dtype, layout=layout, generator=rng, requires_grad=requires_grad)
    noise_batch = n if noise_kind == "per_sample" else 1
    noise = testing.make_tensor(
        [noise_batch, 1, h, w], dtype, layout=layout, generator=rng, requires_grad=requires_grad
    )
    strength = testing.make_tensor([c], dtype, generator=rng, requires_grad=requires_grad)
    return x, noise, strength


# --- reference vs first principles (float64) -------------------------------------------------


def naive_forward(x, noise, strength):
    out = torch.empty_like(x)
    n_, c_, h_, w_ = x.shape
    for n in range(n_):
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    nz = noise[n if noise.shape[0] == n_ else 0, 0, h, w].item()
                    out[n, c, h, w] = x[n, c, h, w].item() + strength[c].item() * nz
    return out


def naive_grads(dy, noise, strength):
    """dnoise and dstrength by accumulating each term of the chain rule, one at a time."""
    dnoise = torch.zeros_like(noise)
    dstrength = torch.zeros_like(strength)
    n_, c_, h_, w_ = dy.shape
    for n in range(n_):
        n_noise = n if noise.shape[0] == n_ else 0
        for c in range(c_):
            for h in range(h_):
                for w in range(w_):
                    d = dy[n, c, h, w].item()
                    dnoise[n_noise, 0, h, w] += d * strength[c].item()
                    dstrength[c] += d * noise[n_noise, 0, h, w].item()
    return dnoise, dstrength


@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
def test_reference_matches_first_principles(noise_kind, rng):
    x, noise, strength = make_inputs([2, 3, 4, 5], torch.float64, "contiguous", rng, noise_kind)
    dy = testing.make_tensor(x.shape, torch.float64, generator=rng)
    out, (dx, dnoise, dstrength) = testing.forward_backward(call("ref"), (x, noise, strength), dy)
    testing.assert_close(out, naive_forward(x, noise, strength), what="y")
    want_dnoise, want_dstrength = naive_grads(dy, noise, strength)
    testing.assert_close(dx, dy, what="dx")
    testing.assert_close(dnoise, want_dnoise, what="dnoise")
    testing.assert_close(dstrength, want_dstrength, what="dstrength")


def test_shared_noise_equals_expanded_noise(rng):
    """[1, 1, H, W] noise is the same image for every sample; its gradient sums the batch."""
    x, noise, strength = make_inputs([3, 4, 5, 6], torch.float64, "contiguous", rng, "shared")
    dy = testing.make_tensor(x.shape, torch.float64, generator=rng)
    expanded = noise.detach().expand(3, 1, 5, 6).clone().requires_grad_(True)
    for impl in CPU_IMPLS:
        testing.require_backend(OP, impl, "cpu")
        out, (_, dnoise, dstrength) = testing.forward_backward(call(impl), (x, noise, strength), dy)
        want, (_, dnoise_each, want_dstrength) = testing.forward_backward(
            call("ref"), (x, expanded, strength), dy
        )
        testing.assert_close(out, want, what=f"{impl} y")
        testing.assert_close(dnoise, dnoise_each.sum(0, keepdim=True), what=f"{impl} dnoise")
        testing.assert_close(dstrength, want_dstrength, what=f"{impl} dstrength")


# --- gradcheck / gradgradcheck --------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_gradcheck_and_gradgradcheck(impl, noise_kind, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    x, noise, strength = make_inputs([2, 3, 4, 5], torch.float64, layout, rng, noise_kind)
    fn = call(impl)
    fast = fast_gradcheck(impl)
    assert torch.autograd.gradcheck(fn, (x, noise, strength), fast_mode=fast)
    assert torch.autograd.gradgradcheck(fn, (x, noise, strength), fast_mode=fast)
    # A fixed noise buffer (no grad), the usual StyleGAN case: only x and strength get grads.
    fixed = noise.detach()
    assert torch.autograd.gradgradcheck(lambda x, s: fn(x, fixed, s), (x, strength), fast_mode=fast)
    assert torch.autograd.gradgradcheck(
        lambda n: fn(x.detach(), n, strength.detach()), (noise,), fast_mode=fast
    )


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
def test_third_order_matches_reference(impl, noise_kind, rng):
    """Every order goes through the bwd op's own autograd; compare the third with ref."""
    testing.require_backend(OP, impl, "cpu")
    x, noise, strength = make_inputs([2, 3, 4, 5], torch.float64, "contiguous", rng, noise_kind)

    def third(impl_):
        y = noise_injection(x, noise, strength, impl=impl_)
        g1 = torch.autograd.grad((y * y).sum(), (noise, strength), create_graph=True)
        loss2 = sum((g * g).sum() for g in g1)
        g2 = torch.autograd.grad(loss2, (noise, strength), create_graph=True)
        loss3 = (g2[0] * noise).sum() + (g2[1] * strength).sum()
        return torch.autograd.grad(loss3, (x, noise, strength))

    for got, want, name in zip(third(impl), third("ref"), ("x", "noise", "strength")):
        assert torch.count_nonzero(want) > 0
        testing.assert_close(got, want, what=f"third-order gradient of {name}")


# --- opcheck of the registered ops ------------------------------------------------------------


def _kernels(impl):
    return registration.OP.kernels(impl)


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
def test_opcheck(impl, layout, noise_kind, rng):
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    x, noise, strength = make_inputs([2, 5, 3, 4], torch.float32, layout, rng, noise_kind)
    dy = testing.make_tensor(x.shape, torch.float32, layout=layout, generator=rng)
    dy.requires_grad_(True)
    torch.library.opcheck(kernels.fwd, (x, noise, strength))
    torch.library.opcheck(kernels.bwd, (dy, noise, strength, True, True))
    # The one-output variants differ only in what is allocated: check schema and fake (shapes,
    # strides) without another ~1 s aot_dispatch run each.
    for flags in [(True, False), (False, True)]:
        torch.library.opcheck(
            kernels.bwd,
            (dy, noise, strength, *flags),
            test_utils=("test_schema", "test_faketensor", "test_autograd_registration"),
        )


# --- parity of every backend against the float64 reference ------------------------------------

SHAPES = [
    [1, 7, 5, 3],  # N = 1, odd C, H != W
    [3, 6, 10, 6],  # H*W not a power of two
    [2, 43, 9, 7],  # C above the kernels' 8 lanes with a tail, several channels_last tasks
    [2, 3, 17, 19],  # H*W above one NCHW pixel tile (256), with a tail
]


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
def test_parity_forward_backward(impl, dtype, layout, shape, noise_kind, rng):
    testing.require_backend(OP, impl, "cpu")
    # The eager reference rounds the product before the sum in low precision; kernels round
    # once.
    slack = 2.0 if impl == "ref" else 1.0
    inputs = make_inputs(shape, dtype, layout, rng, noise_kind)
    dy = testing.make_tensor(shape, dtype, layout=layout, generator=rng)
    out, (dx, dnoise, dstrength) = testing.forward_backward(call(impl), inputs, dy)
    ref, (dx64, dnoise64, dstrength64) = testing.forward_backward(
        call("ref"), testing.to_float64(inputs), dy.double()
    )
    assert out.dtype == dtype and out.shape == inputs[0].shape
    assert testing.is_layout(out, layout) or layout == "noncontiguous"
    testing.assert_close(out, ref, dtype, "y", slack)
    testing.assert_close(dx, dx64, dtype, "dx", slack)
    # dnoise and dstrength sum over C and over N*H*W: allow the summation's own rounding.
    testing.assert_close(dnoise, dnoise64, dtype, "dnoise", slack * 2)
    testing.assert_close(dstrength, dstrength64, dtype, "dstrength", slack * 2)


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", testing.FLOAT_DTYPES)
@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
@pytest.mark.parametrize("wrt", [1, 2])
def test_parity_r1_pattern(impl, dtype, layout, noise_kind, wrt, rng):
    """R1 through noise and strength (through x the first gradient is dy, a constant)."""
    testing.require_backend(OP, impl, "cpu")
    inputs = make_inputs([2, 20, 6, 3], dtype, layout, rng, noise_kind)
    grads = testing.r1_pattern(call(impl), inputs, wrt=wrt)
    grads64 = testing.r1_pattern(call("ref"), testing.to_float64(inputs), wrt=wrt)
    # Low precision: the loss itself is built from rounded outputs and gradients.
    slack = 1.0 if dtype in (torch.float32, torch.float64) else 4.0
    for g, g64, name in zip(grads, grads64, ("dx", "dnoise", "dstrength")):
        testing.assert_close(g, g64, dtype, f"R1 {name}", slack)


@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
def test_backward_is_deterministic(noise_kind, rng):
    """Big enough for several threads' worth of tasks: same bits with one thread, and right."""
    testing.require_backend(OP, "cpp", "cpu")
    for layout in ["contiguous", "channels_last"]:
        inputs = make_inputs([4, 64, 24, 24], torch.float32, layout, rng, noise_kind)
        dy = testing.make_tensor(inputs[0].shape, torch.float32, layout=layout, generator=rng)
        first = testing.forward_backward(call("cpp"), inputs, dy)[1]
        want = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy.double())[1]
        for got, expected, name in zip(first, want, ("dx", "dnoise", "dstrength")):
            # dstrength sums 2304 terms per channel: a long reduction.
            testing.assert_close(got, expected, what=name, slack=2)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            serial = testing.forward_backward(call("cpp"), inputs, dy)[1]
        finally:
            torch.set_num_threads(threads)
        for a, b in zip(first, serial):
            assert torch.equal(a, b)


# --- NaN/Inf, empty tensors ------------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
def test_nan_and_inf_propagate_like_reference(impl, layout, noise_kind, rng):
    testing.require_backend(OP, impl, "cpu")
    for infinite_strength in [False, True]:
        x, noise, strength = make_inputs([2, 4, 3, 3], torch.float32, layout, rng, noise_kind)
        dy = testing.make_tensor(x.shape, torch.float32, layout=layout, generator=rng)
        with torch.no_grad():
            x[0, 1, 0, 0] = float("nan")
            noise[-1, 0, 1, 1] = float("inf")
            noise[0, 0, 2, 0] = -float("inf")
            dy[1, 0, 1, 2] = float("nan")
            if infinite_strength:
                strength[2] = float("inf")
        out, grads = testing.forward_backward(call(impl), (x, noise, strength), dy)
        ref, grads64 = testing.forward_backward(
            call("ref"), testing.to_float64((x, noise, strength)), dy.double()
        )
        testing.assert_close(out, ref, what="y with NaN/Inf inputs")
        for g, g64, name in zip(grads, grads64, ("dx", "dnoise", "dstrength")):
            assert not torch.isfinite(g64).all()
            testing.assert_close(g, g64, what=f"{name} with NaN/Inf inputs")


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("shape", [[0, 3, 4, 4], [2, 0, 4, 4], [2, 3, 0, 4]])
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
def test_empty_tensors(impl, shape, noise_kind, rng):
    testing.require_backend(OP, impl, "cpu")
    x, noise, strength = make_inputs(shape, torch.float32, "contiguous", rng, noise_kind)
    y = noise_injection(x, noise, strength, impl=impl)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.shape == x.shape
    # Sums over nothing: zeros, also where noise has pixels but x has no samples or channels.
    assert torch.equal(noise.grad, torch.zeros_like(noise))
    assert torch.equal(strength.grad, torch.zeros_like(strength))


# --- drawn noise (noise=None) ----------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_drawn_noise_follows_the_generator(impl, dtype, layout, rng):
    testing.require_backend(OP, impl, "cpu")
    x, _, strength = make_inputs([2, 5, 4, 6], dtype, layout, rng, "per_sample")

    def draw(seed):
        return noise_injection(
            x, None, strength, impl=impl, generator=torch.Generator().manual_seed(seed)
        )

    first, again, other = draw(7), draw(7), draw(8)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert testing.is_layout(first, layout)
    # The noise is torch.randn([N, 1, H, W], generator=...) in x's dtype.
    expected_noise = torch.randn(
        [2, 1, 4, 6], dtype=dtype, generator=torch.Generator().manual_seed(7)
    )
    want = noise_injection(*testing.to_float64((x, expected_noise, strength)), impl="ref")
    testing.assert_close(first, want, dtype, "y with drawn noise")
    first.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    assert strength.grad.shape == strength.shape and torch.isfinite(strength.grad).all()


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_drawn_noise_without_generator_is_fresh(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    x, _, strength = make_inputs([2, 5, 4, 6], torch.float32, "contiguous", rng, "per_sample")
    with torch.random.fork_rng():
        torch.manual_seed(3)
        first = noise_injection(x, None, strength, impl=impl)
        second = noise_injection(x, None, strength, impl=impl)
        torch.manual_seed(3)
        replay = noise_injection(x, None, strength, impl=impl)
    assert not torch.equal(first, second)
    assert torch.equal(first, replay)  # drawn from the global generator


def test_refused_impl_does_not_consume_the_generator():
    x, strength = torch.randn(2, 3, 4, 4), torch.randn(3)
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    with pytest.raises(NotImplementedError):
        noise_injection(x, None, strength, impl="cuda", generator=generator)
    assert torch.equal(generator.get_state(), state)


# --- Triton: the GPU launch structure, under the interpreter, and on a GPU -------------------

# Tiles of 16 elements at most 4 wide, and reductions split for 6 programs (2 SMs x 3 resident
# programs): a test tensor then spans many tiles and channel blocks, sums split over programs,
# and the partial-sum kernel adds them.
SMALL_TILES = dict(tile=16, max_cols=4, sms=2, num_warps=1, sum_kernel=True)
SMALL_TILES_PROGRAMS_PER_SM = 3


@pytest.mark.parametrize("layout", testing.LAYOUTS)
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_multi_tile_launches_match_reference(layout, noise_kind, dtype, rng, monkeypatch):
    """The CPU launcher covers a test tensor with one tile; GPU launches split it into many
    tiles and programs and add partial sums with their own kernel. Those paths, forced
    small, against the float64 reference (every output, each gradient alone and both)."""
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
    inputs = make_inputs([2, 7, 3, 5], dtype, layout, rng, noise_kind)
    dy = testing.make_tensor(inputs[0].shape, dtype, layout=layout, generator=rng)
    out, (dx, dnoise, dstrength) = testing.forward_backward(call("triton"), inputs, dy)
    ref, (_, dnoise64, dstrength64) = testing.forward_backward(
        call("ref"), testing.to_float64(inputs), dy.double()
    )
    testing.assert_close(out, ref, dtype, "y")
    testing.assert_close(dnoise, dnoise64, dtype, "dnoise", slack=2)
    testing.assert_close(dstrength, dstrength64, dtype, "dstrength", slack=2)
    _, noise, strength = inputs
    only_dnoise, empty = registration.OP.triton.bwd(dy, noise, strength, True, False)
    empty_too, only_dstrength = registration.OP.triton.bwd(dy, noise, strength, False, True)
    assert empty.shape == empty_too.shape == (0,)
    testing.assert_close(only_dnoise, dnoise64, dtype, "dnoise alone", slack=2)
    testing.assert_close(only_dstrength, dstrength64, dtype, "dstrength alone", slack=2)


# StyleGAN's synthesis layers as (C, H = W), at N = 2.
STYLEGAN_LAYERS = [(512, 8), (512, 32), (512, 64), (256, 128), (128, 256), (64, 512), (32, 1024)]


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("noise_kind", NOISE_KINDS)
@pytest.mark.parametrize("channels,size", STYLEGAN_LAYERS)
def test_cuda_triton_parity_stylegan_layers(channels, size, noise_kind, layout, dtype):
    """impl='triton' on CUDA tensors vs the float64 reference: forward, backward (dnoise,
    dstrength), the R1 pattern through noise and strength, and bitwise-equal results on a
    second run (no atomics)."""
    testing.require_backend(OP, "triton", "cuda")
    rng = torch.Generator().manual_seed(channels * size)
    shape = [2, channels, size, size]
    inputs = [
        t.detach().cuda().requires_grad_(True)
        for t in make_inputs(shape, dtype, layout, rng, noise_kind)
    ]
    dy = testing.make_tensor(shape, dtype, "cuda", layout, rng)
    out, grads = testing.forward_backward(call("triton"), inputs, dy)
    ref, grads64 = testing.forward_backward(call("ref"), testing.to_float64(inputs), dy.double())
    assert testing.is_layout(out, layout)
    testing.assert_close(out, ref, dtype, "y")
    # dnoise sums C (x N when shared) terms, dstrength N*H*W (up to 2M): allow the sums'
    # own rounding.
    for g, g64, name in zip(grads[1:], grads64[1:], ("dnoise", "dstrength")):
        testing.assert_close(g, g64, dtype, name, slack=2)
    again, grads_again = testing.forward_backward(call("triton"), inputs, dy)
    assert torch.equal(out, again)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_again))
    del ref, grads64, again, grads_again
    if size <= 256:
        slack = 1.0 if dtype == torch.float32 else 4.0
        for wrt in [1, 2]:
            r1 = testing.r1_pattern(call("triton"), inputs, wrt=wrt)
            r1_64 = testing.r1_pattern(call("ref"), testing.to_float64(inputs), wrt=wrt)
            for g, g64, name in zip(r1, r1_64, ("dx", "dnoise", "dstrength")):
                testing.assert_close(g, g64, dtype, f"R1 (wrt {wrt}) {name}", slack * 2)


# --- torch.compile ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_compile_fullgraph_matches_eager(impl, rng):
    testing.require_backend(OP, impl, "cpu")
    x, noise, strength = make_inputs([2, 6, 5, 4], torch.float32, "contiguous", rng, "shared")

    def layer(x, noise, strength):
        loss = noise_injection(x, noise, strength, impl=impl).square().mean()
        # Drawn noise inside the graph: x = 0 leaves strength[c] * noise[n, 0, h, w].
        drawn = noise_injection(torch.zeros_like(x), None, strength.detach(), impl=impl)
        return loss, drawn

    compiled = torch.compile(layer, fullgraph=True)
    (got, drawn), (want, _) = compiled(x, noise, strength), layer(x, noise, strength)
    got_grads = torch.autograd.grad(got, (x, noise, strength))
    want_grads = torch.autograd.grad(want, (x, noise, strength))
    testing.assert_close(got, want.double(), what="compiled output")
    for g, w in zip(got_grads, want_grads):
        testing.assert_close(g, w.double(), what="compiled gradient")
    per_channel = drawn.double() / strength.detach().double().reshape(1, -1, 1, 1)
    testing.assert_close(per_channel, per_channel[:, :1].expand_as(per_channel), torch.float32)
    assert per_channel[:, 0].std() > 0.5  # standard-normal noise, not zeros


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    x, noise, strength = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4), torch.randn(3)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        noise_injection([1.0], noise, strength)
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        noise_injection(torch.ones(2, 3, 4, 4, dtype=torch.int32), noise, strength)
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        noise_injection(torch.randn(3, 4, 4), noise, strength)
    with pytest.raises(TypeError, match=r"strength is required: a \[C\] = \[3\] tensor"):
        noise_injection(x, noise)
    with pytest.raises(ValueError, match=r"strength must have shape \[C\] = \[3\], got \[4\]"):
        noise_injection(x, noise, torch.randn(4))
    with pytest.raises(ValueError, match="strength must have 1 dimensions"):
        noise_injection(x, noise, torch.randn(1, 3))
    with pytest.raises(TypeError, match=r"strength must have the dtype of x \(torch.float32\)"):
        noise_injection(x, noise, strength.double())
    with pytest.raises(ValueError, match="strength is on meta but x is on cpu"):
        noise_injection(x, noise, strength.to("meta"))
    with pytest.raises(
        ValueError,
        match=r"noise must have shape \[N, 1, H, W\] = \[2, 1, 4, 4\] or "
        r"\[1, 1, H, W\] = \[1, 1, 4, 4\], got \[2, 3, 4, 4\]",
    ):
        noise_injection(x, x, strength)
    with pytest.raises(ValueError, match="got \\[3, 1, 4, 4\\]"):
        noise_injection(x, torch.randn(3, 1, 4, 4), strength)
    with pytest.raises(ValueError, match="noise must have 4 dimensions"):
        noise_injection(x, torch.randn(4, 4), strength)
    with pytest.raises(TypeError, match=r"noise must have the dtype of x \(torch.float32\)"):
        noise_injection(x, noise.half(), strength)
    with pytest.raises(ValueError, match="noise is on meta but x is on cpu"):
        noise_injection(x, noise.to("meta"), strength)
    with pytest.raises(ValueError, match="generator is used only to draw noise"):
        noise_injection(x, noise, strength, generator=torch.Generator())
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        noise_injection(x, None, strength, generator=0)
    with pytest.raises(ValueError, match="impl must be one of"):
        noise_injection(x, noise, strength, impl="fast")


@pytest.mark.parametrize("impl", KERNEL_IMPLS)
def test_direct_op_calls_check_their_inputs(impl):
    testing.require_backend(OP, impl, "cpu")
    kernels = _kernels(impl)
    x, noise, strength = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4), torch.randn(3)
    with pytest.raises(RuntimeError, match="noise must have shape"):
        kernels.fwd(x, torch.randn(2, 1, 4, 5), strength)
    with pytest.raises(RuntimeError, match=r"strength must have shape \[C\]"):
        kernels.bwd(x, noise, torch.randn(4), True, True)
    with pytest.raises(RuntimeError, match="must have the dtype"):
        kernels.fwd(x, noise, strength.double())


def test_unavailable_impl_lists_every_backend_reason():
    x, noise, strength = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4), torch.randn(3)
    with pytest.raises(NotImplementedError) as info:
        noise_injection(x, noise, strength, impl="cuda")
    message = str(info.value)
    assert "impl='cuda' cannot serve these inputs (cpu tensors): runs CUDA tensors only" in message
    for backend in _backend.BACKENDS:
        assert f"  {backend}: " in message


def test_env_variable_selects_impl(monkeypatch):
    x, noise, strength = torch.randn(2, 3, 4, 4), torch.randn(1, 1, 4, 4), torch.randn(3)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_NOISE_INJECTION", "cuda")
    with pytest.raises(NotImplementedError, match="impl='cuda'"):
        noise_injection(x, noise, strength)
    monkeypatch.setenv("STYLEGAN_FAST_IMPL_NOISE_INJECTION", "ref")
    monkeypatch.setenv("STYLEGAN_FAST_IMPL", "cuda")
    want = x + strength.reshape(1, -1, 1, 1) * noise
    assert torch.equal(noise_injection(x, noise, strength), want)  # the per-op variable wins


def test_auto_fallback_warns_once(monkeypatch):
    monkeypatch.setitem(_backend._STATIC_REASONS, (OP, "cpp", "cpu"), "pretend it is missing")
    monkeypatch.setattr(_backend, "_WARNED", set())
    x, noise, strength = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4), torch.randn(3)
    with pytest.warns(FallbackWarning, match="uses impl='ref'.*pretend it is missing"):
        noise_injection(x, noise, strength)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        noise_injection(x, noise, strength)  # a second call stays quiet
