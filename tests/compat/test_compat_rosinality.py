"""rosinality shims (``stylegan_fast.compat.rosinality``): signatures and module paths,
fused_leaky_relu / FusedLeakyReLU / upfirdn2d vs float64 computations from their definitions
and from first principles (impulse responses, pad placement), every CPU backend, bad input."""

import inspect
import math
from functools import partial

import compat_eager as eager
import pytest
import torch

from stylegan_fast import testing
from stylegan_fast.compat import rosinality
from stylegan_fast.compat.rosinality import FusedLeakyReLU, fused_leaky_relu, upfirdn2d

BIAS_IMPLS = testing.implemented_backends("bias_act", "cpu")
UPFIRDN_IMPLS = testing.implemented_backends("upfirdn2d", "cpu")

NONE = inspect.Parameter.empty
SIGNATURES = {
    fused_leaky_relu: [("input", NONE), ("bias", None), ("negative_slope", 0.2), ("scale", 2**0.5)],
    FusedLeakyReLU.__init__: [
        ("self", NONE), ("channel", NONE), ("bias", True), ("negative_slope", 0.2),
        ("scale", 2**0.5),
    ],
    upfirdn2d: [("input", NONE), ("kernel", NONE), ("up", 1), ("down", 1), ("pad", (0, 0))],
}  # fmt: skip


@pytest.mark.parametrize("fn", list(SIGNATURES), ids=lambda fn: fn.__qualname__)
def test_signature_matches_rosinality(fn):
    got = [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
    assert got == SIGNATURES[fn]


def test_module_paths_mirror_the_op_package():
    """``from op import ...``, ``from op.fused_act import ...``, ``from op.upfirdn2d import
    ...`` each have a counterpart."""
    from stylegan_fast.compat.rosinality import op
    from stylegan_fast.compat.rosinality.op.fused_act import FusedLeakyReLU as from_fused_act
    from stylegan_fast.compat.rosinality.op.fused_act import fused_leaky_relu as fn_fused_act
    from stylegan_fast.compat.rosinality.op.upfirdn2d import upfirdn2d as from_upfirdn2d

    assert op.FusedLeakyReLU is rosinality.FusedLeakyReLU is from_fused_act
    assert op.fused_leaky_relu is rosinality.fused_leaky_relu is fn_fused_act
    assert op.upfirdn2d is rosinality.upfirdn2d is from_upfirdn2d


# --- fused_leaky_relu / FusedLeakyReLU --------------------------------------------------------


@pytest.mark.parametrize("impl", BIAS_IMPLS)
def test_fused_leaky_relu_matches_definition(impl, rng, monkeypatch):
    testing.require_backend("bias_act", impl, "cpu")
    monkeypatch.setenv("STYLEGAN_FAST_IMPL", impl)
    for shape in ([6, 5], [2, 4, 3], [2, 3, 4, 5], [2, 3, 2, 3, 2]):
        x = testing.make_tensor(shape, torch.float64, generator=rng, requires_grad=True)
        b = testing.make_tensor([shape[1]], torch.float64, generator=rng, requires_grad=True)
        cotangent = testing.make_tensor(shape, torch.float64, generator=rng)
        for kwargs in [{}, dict(negative_slope=0.05, scale=0.7), dict(negative_slope=-1.5)]:
            shim = partial(fused_leaky_relu, **kwargs)
            got, got_grads = testing.forward_backward(shim, (x, b), cotangent)
            want_fn = partial(eager.rosinality_fused_leaky_relu, **kwargs)
            want, want_grads = testing.forward_backward(want_fn, (x, b), cotangent)
            what = f"{shape} {kwargs}"
            testing.assert_close(got, want, what=what)
            testing.assert_close(got_grads[0], want_grads[0], what=f"{what} d input")
            testing.assert_close(got_grads[1], want_grads[1], what=f"{what} d bias")
        got = testing.r1_pattern(lambda x, b: fused_leaky_relu(x, b), (x, b))
        want = testing.r1_pattern(lambda x, b: eager.rosinality_fused_leaky_relu(x, b), (x, b))
        testing.assert_close(got[0], want[0], what=f"{shape} R1 d input")
        testing.assert_close(got[1], want[1], what=f"{shape} R1 d bias")


def test_fused_leaky_relu_first_principles():
    x = torch.tensor([[-2.0, 0.5], [3.0, -0.25]], dtype=torch.float64)
    bias = torch.tensor([1.0, -1.0], dtype=torch.float64)
    # v = x + bias = [[-1, -0.5], [4, -1.25]]; slope 0.2 below zero; times sqrt(2).
    want = torch.tensor([[-0.2, -0.1], [4.0, -0.25]], dtype=torch.float64) * math.sqrt(2)
    testing.assert_close(fused_leaky_relu(x, bias), want)
    # Without bias any rank works, 1-D included.
    v = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    testing.assert_close(fused_leaky_relu(v, negative_slope=0.5, scale=2), torch.tensor([-1.0, 4]))


def test_fused_leaky_relu_float32_channels_last(rng):
    x = testing.make_tensor([2, 5, 4, 3], torch.float32, layout="channels_last", generator=rng)
    b = testing.make_tensor([5], torch.float32, generator=rng)
    got = fused_leaky_relu(x, b)
    assert testing.is_layout(got, "channels_last")
    testing.assert_close(got, eager.rosinality_fused_leaky_relu(x.double(), b.double()))


def test_fused_leaky_relu_module(rng):
    act = FusedLeakyReLU(4)
    assert list(act.state_dict()) == ["bias"]
    assert isinstance(act.bias, torch.nn.Parameter) and torch.equal(act.bias, torch.zeros(4))
    assert act.negative_slope == 0.2 and act.scale == 2**0.5
    # A rosinality checkpoint's entry loads into it and is used.
    trained_bias = testing.make_tensor([4], generator=rng)
    act.load_state_dict({"bias": trained_bias})
    x = testing.make_tensor([2, 4, 3, 3], generator=rng, requires_grad=True)
    y = act(x)
    testing.assert_close(y, eager.rosinality_fused_leaky_relu(x.double(), trained_bias.double()))
    y.sum().backward()
    assert act.bias.grad.shape == (4,)
    plain = FusedLeakyReLU(4, bias=False, negative_slope=0.1, scale=1.0)
    assert plain.bias is None and list(plain.state_dict()) == []
    testing.assert_close(plain(x), eager.rosinality_fused_leaky_relu(x.double(), None, 0.1, 1.0))
    assert "4, bias=False, negative_slope=0.1, scale=1" in repr(plain)
    assert act.double()(x.double()).dtype == torch.float64


def test_fused_leaky_relu_bad_inputs():
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"bias must have shape \[input.shape\[1\]\] = \[3\]"):
        fused_leaky_relu(x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"input must have shape \[N, C, ...\]"):
        fused_leaky_relu(torch.randn(3), torch.zeros(3))
    with pytest.raises(TypeError, match="bias must have the dtype of input"):
        fused_leaky_relu(x, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="input must be a torch.Tensor"):
        fused_leaky_relu([1.0], None)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        fused_leaky_relu(x, None, negative_slope=None)
    with pytest.raises(ValueError, match=r"bias must have 1 dimensions"):
        fused_leaky_relu(x, torch.zeros(1, 3))
    with pytest.raises(TypeError, match="channel must be an int"):
        FusedLeakyReLU(3.0)
    with pytest.raises(ValueError, match=r"bias must have shape \[input.shape\[1\]\] = \[5\]"):
        FusedLeakyReLU(3)(torch.randn(2, 5, 4))


# --- upfirdn2d ---------------------------------------------------------------------------------


def _blur_kernel(taps):
    k = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum()


CASES = [
    # (input H, W, kernel shape, up, down, pad)
    (4, 5, [4, 4], 1, 1, (2, 1)),
    (4, 5, [4, 4], 2, 1, (2, 1)),
    (6, 5, [4, 4], 1, 2, (1, 1)),
    (5, 6, [3, 2], 1, 1, (0, 0)),
    (4, 4, [3, 3], 3, 2, (-1, 2)),
    (5, 3, [2, 3], (2, 1), (1, 2), (1, 0, -1, 2)),
    (6, 6, [4, 4], 2, 2, (1, 2, 0, -1)),
]


@pytest.mark.parametrize("impl", UPFIRDN_IMPLS)
def test_upfirdn2d_matches_definition(impl, rng, monkeypatch):
    testing.require_backend("upfirdn2d", impl, "cpu")
    monkeypatch.setenv("STYLEGAN_FAST_IMPL", impl)
    for H, W, kshape, up, down, pad in CASES:
        x = testing.make_tensor([2, 3, H, W], torch.float64, generator=rng, requires_grad=True)
        kernel = testing.make_tensor(kshape, torch.float32, generator=rng)
        shim = partial(upfirdn2d, kernel=kernel, up=up, down=down, pad=pad)
        want_fn = partial(eager.rosinality_upfirdn2d, kernel=kernel, up=up, down=down, pad=pad)
        want = want_fn(x)
        cotangent = testing.make_tensor(want.shape, torch.float64, generator=rng)
        (want_dx,) = torch.autograd.grad(want, x, cotangent)
        got, (got_dx,) = testing.forward_backward(shim, (x,), cotangent)
        what = f"kernel={kshape} up={up} down={down} pad={pad}"
        testing.assert_close(got, want, what=what)
        testing.assert_close(got_dx, want_dx, what=f"{what} d input")
        got_r1, want_r1 = testing.r1_pattern(shim, (x,)), testing.r1_pattern(want_fn, (x,))
        testing.assert_close(got_r1[0], want_r1[0], what=f"{what} R1")


def test_upfirdn2d_first_principles():
    """An impulse padded by (k - 1, k - 1) gives the kernel itself (a true convolution, not a
    correlation); (before, after) pads both axes alike; the output size formula."""
    kernel = torch.arange(1.0, 10.0).reshape(3, 3)
    impulse = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    assert torch.equal(upfirdn2d(impulse, kernel, pad=(2, 2))[0, 0], kernel.double())
    one = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    identity = torch.ones(1, 1)
    placed = upfirdn2d(one, identity, pad=(1, 0))[0, 0]  # one zero before, on both axes
    assert torch.equal(placed, torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64))
    placed = upfirdn2d(one, identity, pad=(0, 1, 2, 0))[0, 0]  # x: 1 after; y: 2 before
    assert torch.equal(placed, torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]).double())
    x = torch.arange(1.0, 5.0, dtype=torch.float64).reshape(1, 1, 2, 2)
    zero_inserted = upfirdn2d(x, identity, up=2)[0, 0]
    want = torch.tensor([[1.0, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]).double()
    assert torch.equal(zero_inserted, want)
    assert torch.equal(upfirdn2d(zero_inserted[None, None], identity, down=2)[0, 0], x[0, 0])
    x = torch.randn(1, 2, 7, 5, dtype=torch.float64)
    # (H * up + pad0 + pad1 - kh) // down + 1: (14 + 3 - 4) // 3 + 1 and (10 + 3 - 3) // 3 + 1
    assert upfirdn2d(x, torch.ones(4, 3), up=2, down=3, pad=(2, 1)).shape == (1, 2, 5, 4)


def test_upfirdn2d_kernel_dtypes(rng):
    """A kernel converted with its model (.double(), .half()) is used in float32: exact for
    a binomial kernel."""
    x = testing.make_tensor([1, 2, 5, 5], torch.float64, generator=rng)
    kernel = _blur_kernel([1, 3, 3, 1])
    want = eager.rosinality_upfirdn2d(x, kernel, 2, 1, (2, 1))
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        testing.assert_close(upfirdn2d(x, kernel.to(dtype), up=2, pad=(2, 1)), want)


def test_upfirdn2d_float32_channels_last(rng):
    x = testing.make_tensor([2, 3, 6, 5], torch.float32, layout="channels_last", generator=rng)
    kernel = _blur_kernel([1, 3, 3, 1]) * 4
    got = upfirdn2d(x, kernel, up=2, pad=(2, 1))
    assert testing.is_layout(got, "channels_last")
    testing.assert_close(got, eager.rosinality_upfirdn2d(x.double(), kernel, 2, 1, (2, 1)))


def test_upfirdn2d_bad_inputs():
    x = torch.randn(2, 3, 4, 4)
    kernel = _blur_kernel([1, 3, 3, 1])
    with pytest.raises(ValueError, match=r"kernel must have shape \[kh, kw\]"):
        upfirdn2d(x, torch.ones(4))
    with pytest.raises(ValueError, match=r"pad must be \(before, after\)"):
        upfirdn2d(x, kernel, pad=1)
    with pytest.raises(ValueError, match=r"pad must be \(before, after\)"):
        upfirdn2d(x, kernel, pad=(1, 1, 1))
    with pytest.raises(TypeError, match="pad must be an int"):
        upfirdn2d(x, kernel, pad=(1.5, 1))
    with pytest.raises(ValueError, match=r"input must have shape \[N, C, H, W\]"):
        upfirdn2d(torch.randn(3, 4, 4), kernel)
    with pytest.raises(TypeError, match="kernel must be a torch.Tensor"):
        upfirdn2d(x, [[1.0]])
    with pytest.raises(TypeError, match="kernel must be float16"):
        upfirdn2d(x, torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="kernel must have at least one tap"):
        upfirdn2d(x, torch.ones(0, 3))
    with pytest.raises(ValueError, match="down must be >= 1"):
        upfirdn2d(x, kernel, down=0)
    with pytest.raises(ValueError, match="the output would be"):
        upfirdn2d(x, kernel, pad=(-1, 0))
