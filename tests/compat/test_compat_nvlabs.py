"""NVlabs shims (``stylegan_fast.compat.nvlabs``): signatures and defaults, every function vs a
float64 computation from NVlabs' documented semantics, first-principles resampling checks,
every CPU backend, impl names, bad input."""

import inspect
import math
import pickle
import random
from functools import partial

import compat_eager as eager
import pytest
import torch

from stylegan_fast import testing
from stylegan_fast.compat.nvlabs import bias_act, upfirdn2d

CPU_IMPLS = testing.implemented_backends("bias_act", "cpu")
UPFIRDN_IMPLS = testing.implemented_backends("upfirdn2d", "cpu")
ACTS = list(eager.NVLABS_DEFAULTS)
BLUR = [1, 3, 3, 1]

# NVlabs' published signatures: (name, default) per parameter (inspect.Parameter.empty: none).
NONE = inspect.Parameter.empty
SIGNATURES = {
    bias_act.bias_act: [
        ("x", NONE), ("b", None), ("dim", 1), ("act", "linear"), ("alpha", None),
        ("gain", None), ("clamp", None), ("impl", "cuda"),
    ],
    upfirdn2d.setup_filter: [
        ("f", NONE), ("device", torch.device("cpu")), ("normalize", True),
        ("flip_filter", False), ("gain", 1), ("separable", None),
    ],
    upfirdn2d.upfirdn2d: [
        ("x", NONE), ("f", NONE), ("up", 1), ("down", 1), ("padding", 0),
        ("flip_filter", False), ("gain", 1), ("impl", "cuda"),
    ],
    upfirdn2d.upsample2d: [
        ("x", NONE), ("f", NONE), ("up", 2), ("padding", 0), ("flip_filter", False),
        ("gain", 1), ("impl", "cuda"),
    ],
    upfirdn2d.downsample2d: [
        ("x", NONE), ("f", NONE), ("down", 2), ("padding", 0), ("flip_filter", False),
        ("gain", 1), ("impl", "cuda"),
    ],
    upfirdn2d.filter2d: [
        ("x", NONE), ("f", NONE), ("padding", 0), ("flip_filter", False), ("gain", 1),
        ("impl", "cuda"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("fn", list(SIGNATURES), ids=lambda fn: fn.__name__)
def test_signature_matches_nvlabs(fn):
    params = inspect.signature(fn).parameters.values()
    got = [(p.name, p.default) for p in params]
    assert got == SIGNATURES[fn]
    for (_, got_default), (_, want_default) in zip(got, SIGNATURES[fn]):
        assert type(got_default) is type(want_default)  # 1 stays an int, not 1.0


@pytest.mark.parametrize("fn", list(SIGNATURES), ids=lambda fn: fn.__name__)
def test_shim_is_a_module_function(fn):
    """Built by ``_impl.shim``, each still reads as a function of its module: name, docstring,
    pickled by reference, and Python's own errors for a missing or unknown argument."""
    module = bias_act if fn is bias_act.bias_act else upfirdn2d
    assert fn.__module__ == module.__name__ and getattr(module, fn.__qualname__) is fn
    assert fn.__doc__ and pickle.loads(pickle.dumps(fn)) is fn
    with pytest.raises(TypeError, match=rf"{fn.__name__}\(\) missing \d required positional"):
        fn()
    with pytest.raises(TypeError, match=rf"{fn.__name__}\(\) got an unexpected keyword"):
        fn(None, nvlabs_has_no_such_argument=1)


def test_module_layout_matches_torch_utils_ops():
    """``from torch_utils.ops import bias_act, upfirdn2d`` gives modules; so must ours."""
    from stylegan_fast.compat import nvlabs

    assert inspect.ismodule(nvlabs.bias_act) and inspect.ismodule(nvlabs.upfirdn2d)
    assert callable(nvlabs.bias_act.bias_act)
    for name in ("setup_filter", "upfirdn2d", "upsample2d", "downsample2d", "filter2d"):
        assert callable(getattr(nvlabs.upfirdn2d, name))


def test_private_helpers_conv2d_resample_imports():
    """NVlabs' conv2d_resample does ``from .upfirdn2d import _parse_padding, _get_filter_size``."""
    assert upfirdn2d._parse_padding(2) == (2, 2, 2, 2)
    assert upfirdn2d._parse_padding([1, -3]) == (1, 1, -3, -3)
    assert upfirdn2d._parse_padding([1, 2, 3, 4]) == (1, 2, 3, 4)
    assert upfirdn2d._get_filter_size(None) == (1, 1)
    assert upfirdn2d._get_filter_size(torch.ones(3, 5)) == (5, 3)
    assert upfirdn2d._get_filter_size(torch.ones(4)) == (4, 4)
    with pytest.raises(ValueError, match="padding must be an int"):
        upfirdn2d._parse_padding([1, 2, 3])


# --- activation_funcs --------------------------------------------------------------------------


def test_activation_funcs_table(rng):
    table = bias_act.activation_funcs
    assert sorted(table) == sorted(ACTS)
    # has_2nd_grad: whether the second derivative is nonzero anywhere (piecewise linear: no).
    piecewise_linear = {"linear", "relu", "lrelu"}
    v = testing.make_tensor([64], torch.float64, generator=rng, scale=2)
    for act, (def_alpha, def_gain) in eager.NVLABS_DEFAULTS.items():
        spec = table[act]
        assert spec.def_alpha == def_alpha and spec["def_alpha"] == def_alpha
        assert spec.def_gain == pytest.approx(def_gain, rel=1e-15)
        assert spec.has_2nd_grad == (act not in piecewise_linear)
        assert spec.ref == ("" if act == "linear" else "x" if act == "swish" else "y")
        testing.assert_close(spec.func(v, alpha=def_alpha), eager.activation(v, act, def_alpha))
    assert [table[act].cuda_idx for act in ACTS] == list(range(1, 10))
    with pytest.raises(TypeError, match="read-only"):
        table["lrelu"].def_gain = 1.0
    with pytest.raises(TypeError, match="read-only"):
        table["lrelu"]["def_alpha"] = 0.1


# --- bias_act ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", CPU_IMPLS)
@pytest.mark.parametrize("act", ACTS)
def test_bias_act_matches_nvlabs_semantics(impl, act, rng):
    testing.require_backend("bias_act", impl, "cpu")
    for shape, dim in [([3, 5, 4, 6], 1), ([7, 6], 0), ([2, 3, 5], 2), ([4, 3, 2, 3, 2], 3)]:
        x = testing.make_tensor(shape, torch.float64, generator=rng, requires_grad=True)
        b = testing.make_tensor([shape[dim]], torch.float64, generator=rng, requires_grad=True)
        cotangent = testing.make_tensor(shape, torch.float64, generator=rng)
        for kwargs in [{}, dict(alpha=0.3, gain=1.7, clamp=0.9), dict(gain=-0.5, clamp=0.0)]:
            shim = partial(bias_act.bias_act, dim=dim, act=act, impl=impl, **kwargs)
            got, got_grads = testing.forward_backward(shim, (x, b), cotangent)
            want_fn = partial(eager.nvlabs_bias_act, dim=dim, act=act, **kwargs)
            want, want_grads = testing.forward_backward(want_fn, (x, b), cotangent)
            what = f"{act} {shape} dim={dim} {kwargs}"
            testing.assert_close(got, want, what=what)
            testing.assert_close(got_grads[0], want_grads[0], what=f"{what} dx")
            testing.assert_close(got_grads[1], want_grads[1], what=f"{what} db")


def test_bias_act_defaults(rng):
    """No bias, default dim/act/alpha/gain/impl: the identity; swish's default gain is
    sqrt(2); elu ignores alpha; lrelu's default slope is 0.2."""
    x = testing.make_tensor([2, 3, 4], torch.float64, generator=rng)
    assert torch.equal(bias_act.bias_act(x), x)
    testing.assert_close(bias_act.bias_act(x, act="swish"), x / (1 + torch.exp(-x)) * math.sqrt(2))
    elu = torch.where(x > 0, x, torch.exp(x) - 1)
    testing.assert_close(bias_act.bias_act(x, act="elu", alpha=0.25), elu)
    lrelu = torch.where(x > 0, x, 0.2 * x) * math.sqrt(2)
    testing.assert_close(bias_act.bias_act(x, act="lrelu"), lrelu)
    testing.assert_close(bias_act.bias_act(x, act="lrelu", impl="ref"), lrelu)


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_bias_act_r1_pattern(impl, rng):
    testing.require_backend("bias_act", impl, "cpu")
    x = testing.make_tensor([2, 4, 3, 5], torch.float64, generator=rng, requires_grad=True)
    b = testing.make_tensor([4], torch.float64, generator=rng, requires_grad=True)
    got = testing.r1_pattern(lambda x, b: bias_act.bias_act(x, b, act="lrelu", impl=impl), (x, b))
    want = testing.r1_pattern(lambda x, b: eager.nvlabs_bias_act(x, b, act="lrelu"), (x, b))
    for g, w, name in zip(got, want, ("x", "b")):
        testing.assert_close(g, w, what=f"R1 gradient of {name}")


def test_bias_act_float32_channels_last(rng):
    x = testing.make_tensor([2, 5, 4, 3], torch.float32, layout="channels_last", generator=rng)
    b = testing.make_tensor([5], torch.float32, generator=rng)
    got = bias_act.bias_act(x, b, act="lrelu", clamp=1.0)
    assert testing.is_layout(got, "channels_last")
    want = eager.nvlabs_bias_act(x.double(), b.double(), act="lrelu", clamp=1.0)
    testing.assert_close(got, want)


def test_bias_act_bad_inputs():
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="act must be one of"):
        bias_act.bias_act(x, act="gelu")
    with pytest.raises(ValueError, match=r"clamp must be None or >= 0, got -1.0"):
        bias_act.bias_act(x, clamp=-1)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        bias_act.bias_act(x, act="elu", alpha="0.5")
    with pytest.raises(ValueError, match=r"b must have shape \[x.shape\[1\]\] = \[3\]"):
        bias_act.bias_act(x, torch.zeros(4))
    with pytest.raises(ValueError, match="impl must be 'cuda'.*or 'ref'.*got 'fast'"):
        bias_act.bias_act(x, impl="fast")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        bias_act.bias_act([1.0, 2.0])


# --- setup_filter ------------------------------------------------------------------------------


def test_setup_filter():
    taps = [1.0, 3.0, 3.0, 1.0]
    f = upfirdn2d.setup_filter(taps)
    assert f.dtype == torch.float32 and f.device == torch.device("cpu")
    t = torch.tensor(taps, dtype=torch.float64)
    testing.assert_close(f, torch.outer(t, t) / 64)
    # >= 8 taps are kept separable by default; separable=True keeps any 1-D filter 1-D.
    assert upfirdn2d.setup_filter([1.0] * 8).shape == (8,)
    sep = upfirdn2d.setup_filter(taps, separable=True, gain=4)
    testing.assert_close(sep, t / 8 * 2)  # gain ** (1 / 2) per axis
    flipped = upfirdn2d.setup_filter([[1.0, 2.0], [3.0, 4.0]], normalize=False, flip_filter=True)
    testing.assert_close(flipped, torch.tensor([[4.0, 3.0], [2.0, 1.0]], dtype=torch.float64))
    testing.assert_close(upfirdn2d.setup_filter(None), torch.ones(1, 1, dtype=torch.float64))
    # A scalar is a 1-tap 1-D filter, so it too becomes its outer product.
    testing.assert_close(upfirdn2d.setup_filter(2.0, normalize=False), torch.full([1, 1], 4.0))
    # NVlabs would normalise a float32 tensor in place; the shim leaves the caller's taps alone.
    mine = torch.tensor(taps)
    upfirdn2d.setup_filter(mine, separable=True)
    assert torch.equal(mine, torch.tensor(taps))


# --- upfirdn2d and helpers ---------------------------------------------------------------------


def _random_config(rnd: random.Random):
    """Up/down per axis, padding incl. negative, 1-D or 2-D filter, flip, gain; nonempty."""
    while True:
        up = [rnd.randint(1, 3), rnd.randint(1, 3)]
        down = [rnd.randint(1, 3), rnd.randint(1, 3)]
        padding = [rnd.randint(-3, 4) for _ in range(4)]
        separable = rnd.random() < 0.4
        fh = rnd.randint(1, 5)
        fw = fh if separable else rnd.randint(1, 5)
        H, W = rnd.randint(1, 6), rnd.randint(1, 7)
        if H * up[1] + padding[2] + padding[3] >= fh and W * up[0] + sum(padding[:2]) >= fw:
            break
    f = torch.randn([fh] if separable else [fh, fw], generator=torch.Generator().manual_seed(fh))
    flip = rnd.random() < 0.5
    gain = rnd.choice([1, 0.5, -2.0])
    return (H, W), f, up, down, padding, flip, gain


def _value_and_grad(fn, want_fn, x, rng):
    """``fn(x)`` and ``want_fn(x)`` with their gradients for one random cotangent."""
    want = want_fn(x)
    cotangent = testing.make_tensor(want.shape, torch.float64, generator=rng)
    (want_dx,) = torch.autograd.grad(want, x, cotangent)
    got, (got_dx,) = testing.forward_backward(fn, (x,), cotangent)
    return got, got_dx, want, want_dx


@pytest.mark.parametrize("impl", UPFIRDN_IMPLS)
def test_upfirdn2d_matches_nvlabs_semantics(impl, rng):
    testing.require_backend("upfirdn2d", impl, "cpu")
    rnd = random.Random(4)
    for _ in range(25):
        (H, W), f, up, down, padding, flip, gain = _random_config(rnd)
        x = testing.make_tensor([2, 3, H, W], torch.float64, generator=rng, requires_grad=True)
        args = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
        got, got_dx, want, want_dx = _value_and_grad(
            partial(upfirdn2d.upfirdn2d, f=f, impl=impl, **args),
            partial(eager.nvlabs_upfirdn2d, f=f, **args),
            x,
            rng,
        )
        what = f"f={list(f.shape)} {args}"
        testing.assert_close(got, want, what=what)
        testing.assert_close(got_dx, want_dx, what=f"{what} dx")


def test_upfirdn2d_argument_forms(rng):
    """Int and [x, y] up/down/padding, None filter, the default impl and 'ref'."""
    x = testing.make_tensor([1, 2, 5, 4], torch.float64, generator=rng)
    f = torch.tensor([[1.0, 2.0, -1.0], [0.5, 3.0, 1.0]])
    testing.assert_close(upfirdn2d.upfirdn2d(x, None), x)
    testing.assert_close(
        upfirdn2d.upfirdn2d(x, f, up=2, down=[1, 2], padding=[1, -1]),
        eager.upfirdn2d(x, f, (2, 2), (1, 2), (1, 1, -1, -1)),
    )
    testing.assert_close(
        upfirdn2d.upfirdn2d(x, f, up=[3, 1], padding=2, impl="ref"),
        eager.upfirdn2d(x, f, (3, 1), (1, 1), (2, 2, 2, 2)),
    )


def test_upfirdn2d_convolves_unless_flip_filter():
    """The impulse response of upfirdn2d is the filter itself (true convolution), and the
    filter reversed with flip_filter=True."""
    f = torch.arange(1.0, 7.0).reshape(2, 3)
    impulse = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    full = [2, 2, 1, 1]  # fw - 1 and fh - 1 on each side: the full convolution
    response = upfirdn2d.upfirdn2d(impulse, f, padding=full)[0, 0]
    assert torch.equal(response, f.double())
    response = upfirdn2d.upfirdn2d(impulse, f, padding=full, flip_filter=True)[0, 0]
    assert torch.equal(response, f.double().flip([0, 1]))


@pytest.mark.parametrize("impl", UPFIRDN_IMPLS)
def test_resampling_helpers_match_nvlabs_semantics(impl, rng):
    testing.require_backend("upfirdn2d", impl, "cpu")
    x = testing.make_tensor([2, 3, 6, 5], torch.float64, generator=rng, requires_grad=True)
    filters = [
        upfirdn2d.setup_filter(BLUR),
        upfirdn2d.setup_filter([1, 2, 1], separable=True),
        torch.randn(3, 2, generator=torch.Generator().manual_seed(0)),
        None,
    ]
    cases = [
        (upfirdn2d.upsample2d, eager.nvlabs_upsample2d, dict(up=2)),
        (upfirdn2d.upsample2d, eager.nvlabs_upsample2d, dict(up=[3, 2], padding=[1, -1, 0, 2])),
        (upfirdn2d.downsample2d, eager.nvlabs_downsample2d, dict()),
        (upfirdn2d.downsample2d, eager.nvlabs_downsample2d, dict(down=[1, 3], padding=1)),
        (upfirdn2d.filter2d, eager.nvlabs_filter2d, dict(gain=3.0)),
        (upfirdn2d.filter2d, eager.nvlabs_filter2d, dict(padding=[-1, 2], flip_filter=True)),
    ]
    for shim, want_fn, kwargs in cases:
        for f in filters:
            got, got_dx, want, want_dx = _value_and_grad(
                partial(shim, f=f, impl=impl, **kwargs), partial(want_fn, f=f, **kwargs), x, rng
            )
            what = f"{shim.__name__} f={None if f is None else list(f.shape)} {kwargs}"
            testing.assert_close(got, want, what=what)
            testing.assert_close(got_dx, want_dx, what=f"{what} dx")


def test_resampling_helpers_first_principles(rng):
    """With the box filter [1, 1]: upsample2d is nearest-neighbour upsampling, downsample2d
    is 2x2 average pooling; filter2d with a centred delta is the identity; the helpers'
    documented output sizes."""
    x = testing.make_tensor([2, 3, 4, 6], torch.float64, generator=rng)
    box = upfirdn2d.setup_filter([1, 1])
    nearest = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    testing.assert_close(upfirdn2d.upsample2d(x, box), nearest)
    pooled = x.reshape(2, 3, 2, 2, 3, 2).mean(dim=(3, 5))
    testing.assert_close(upfirdn2d.downsample2d(x, box), pooled)
    delta = upfirdn2d.setup_filter([0, 1, 0], normalize=False)
    testing.assert_close(upfirdn2d.filter2d(x, delta), x)
    blur = upfirdn2d.setup_filter(BLUR)
    assert upfirdn2d.upsample2d(x, blur).shape == (2, 3, 8, 12)
    assert upfirdn2d.downsample2d(x, blur).shape == (2, 3, 2, 3)
    assert upfirdn2d.filter2d(x, blur).shape == x.shape
    # A constant image stays constant away from the borders (the filter is normalised and
    # upsample2d's gain makes up for the inserted zeros).
    ones = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    interior = upfirdn2d.upsample2d(ones, blur)[..., 2:-2, 2:-2]
    testing.assert_close(interior, torch.ones_like(interior))


def test_upfirdn2d_bad_inputs():
    x = torch.randn(2, 3, 4, 4)
    f = upfirdn2d.setup_filter(BLUR)
    with pytest.raises(ValueError, match=r"x must have shape \[N, C, H, W\]"):
        upfirdn2d.upfirdn2d(torch.randn(3, 4, 4), f)
    with pytest.raises(TypeError, match="f must be float32"):
        upfirdn2d.upsample2d(x, f.double())
    with pytest.raises(ValueError, match="up must be >= 1"):
        upfirdn2d.upsample2d(x, f, up=0)
    with pytest.raises(ValueError, match="impl must be 'cuda'"):
        upfirdn2d.filter2d(x, f, impl="CUDA")
    with pytest.raises(ValueError, match="the output would be"):
        upfirdn2d.upfirdn2d(x, f, padding=-1)
    with pytest.raises(ValueError, match="f must have 0, 1 or 2 dimensions"):
        upfirdn2d.setup_filter(torch.ones(2, 2, 2))
