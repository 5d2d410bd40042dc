"""``conv2d_gradfix`` of both compat packages: signatures and switches as NVlabs' / rosinality's,
the same numbers as ``F.conv2d`` / ``F.conv_transpose2d`` (float64) in the forward pass, the
backward pass and the R1 pattern and one order beyond it, gradcheck and gradgradcheck, and the
weight-gradient switch used the way their training loops use it."""

import contextlib
import inspect

import pytest
import torch
import torch.nn.functional as F

from stylegan_fast import testing
from stylegan_fast.compat.nvlabs import conv2d_gradfix as nvlabs_gradfix
from stylegan_fast.compat.rosinality.op import conv2d_gradfix as rosinality_gradfix

MODULES = {"nvlabs": nvlabs_gradfix, "rosinality": rosinality_gradfix}
DEFAULT_ENABLED = {"nvlabs": False, "rosinality": True}


@pytest.fixture
def switches():
    """Restores both modules' switches after the test (a client's training loop sets them)."""
    saved = {m: (m.enabled, m.weight_gradients_disabled) for m in MODULES.values()}
    yield
    for module, (enabled, disabled) in saved.items():
        module.enabled, module.weight_gradients_disabled = enabled, disabled


NONE = inspect.Parameter.empty


def _params(fn):
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("style", list(MODULES))
def test_signatures_and_defaults(style):
    """Argument names, order and defaults of torch's functions (which theirs copy), and each
    code base's switches: NVlabs ``no_weight_gradients(disable=True)`` and ``enabled=False``,
    rosinality ``no_weight_gradients()`` and ``enabled=True``."""
    module = MODULES[style]
    assert _params(module.conv2d) == [
        ("input", NONE), ("weight", NONE), ("bias", None), ("stride", 1), ("padding", 0),
        ("dilation", 1), ("groups", 1),
    ]  # fmt: skip
    assert _params(module.conv_transpose2d) == [
        ("input", NONE), ("weight", NONE), ("bias", None), ("stride", 1), ("padding", 0),
        ("output_padding", 0), ("groups", 1), ("dilation", 1),
    ]  # fmt: skip
    want = [("disable", True)] if style == "nvlabs" else []
    assert _params(module.no_weight_gradients) == want
    assert module.enabled is DEFAULT_ENABLED[style]
    assert module.weight_gradients_disabled is False


# (transpose, N, I, O, H, W, kh, kw, stride, padding, dilation, groups, output_padding)
CASES = [
    (False, 2, 4, 6, 7, 6, 3, 2, (2, 1), (1, 0), (1, 2), 2, 0),
    (False, 1, 3, 3, 5, 5, 1, 1, 1, 0, 1, 1, 0),
    (False, 2, 4, 4, 6, 6, 3, 3, 2, 1, 1, 4, 0),  # depthwise, strided (a D's downsampling)
    (True, 2, 4, 6, 4, 5, 3, 2, (2, 1), (1, 0), 1, 2, (1, 0)),
    (True, 1, 4, 4, 3, 3, 3, 3, 2, 0, 1, 2, 0),  # rosinality's upsampling modulated conv
    (True, 2, 2, 3, 4, 4, 3, 3, 1, 1, 3, 1, (2, 1)),  # output_padding >= stride (dilation 3)
]


def _case(case, rng, module):
    """(fn, reference, inputs) of one case: our function and torch's, float64 inputs."""
    transpose, N, I, O, H, W, kh, kw, stride, padding, dilation, groups, output_padding = case
    x = testing.make_tensor([N, I, H, W], torch.float64, generator=rng, requires_grad=True)
    w_shape = [I, O // groups, kh, kw] if transpose else [O, I // groups, kh, kw]
    w = testing.make_tensor(w_shape, torch.float64, generator=rng, requires_grad=True)
    b = testing.make_tensor([O], torch.float64, generator=rng, requires_grad=True)
    if transpose:
        args = (stride, padding, output_padding, groups, dilation)
        return (
            lambda x, w, b: module.conv_transpose2d(x, w, b, *args),
            lambda x, w, b: F.conv_transpose2d(x, w, b, *args),
            (x, w, b),
        )
    args = (stride, padding, dilation, groups)
    return (
        lambda x, w, b: module.conv2d(x, w, b, *args),
        lambda x, w, b: F.conv2d(x, w, b, *args),
        (x, w, b),
    )


def _third_order(fn, inputs):
    """Gradients of ``P = |dL/dx|² + mean(y)`` with ``L = |y|²``, then of ``|dP/dw|²``: R1's
    double backward and one order beyond it."""
    x, w, b = inputs
    y = fn(x, w, b)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    penalty = gx.square().sum() + y.mean()
    (gw,) = torch.autograd.grad(penalty, w, create_graph=True)
    return (gx, gw, *torch.autograd.grad(gw.square().sum(), (x, w, b)))


@pytest.mark.parametrize("style", list(MODULES))
@pytest.mark.parametrize("case", CASES, ids=lambda c: "transpose" if c[0] else "conv")
def test_matches_torch_to_third_order(style, case, rng, switches):
    MODULES[style].enabled = True
    fn, reference, inputs = _case(case, rng, MODULES[style])
    y, want = fn(*inputs), reference(*inputs)
    testing.assert_close(y, want)
    cotangent = testing.make_tensor(want.shape, torch.float64, generator=rng)
    got_grads = torch.autograd.grad(y, inputs, cotangent)
    want_grads = torch.autograd.grad(want, inputs, cotangent)
    for name, got, expected in zip("xwb", got_grads, want_grads):
        testing.assert_close(got, expected, what=f"d{name}")
    got_r1, want_r1 = testing.r1_pattern(fn, inputs), testing.r1_pattern(reference, inputs)
    for name, got, expected in zip("xwb", got_r1, want_r1):
        testing.assert_close(got, expected, what=f"R1 d{name}")
    if case[0] and case[-1] != 0:
        return  # torch's own third derivative refuses output_padding: see the test below
    for i, (got, expected) in enumerate(
        zip(_third_order(fn, inputs), _third_order(reference, inputs))
    ):
        testing.assert_close(got, expected, what=f"higher-order gradient {i}")


def test_third_order_where_torch_refuses(rng, switches):
    """torch cannot differentiate a transposed conv with output_padding three times (its double
    backward builds a plain conv with output_padding); ours can, checked numerically."""
    nvlabs_gradfix.enabled = True
    case = (True, 1, 2, 2, 2, 3, 2, 2, 2, 0, 1, 1, (1, 0))
    fn, reference, inputs = _case(case, rng, nvlabs_gradfix)
    with pytest.raises(RuntimeError, match="output_padding is not supported"):
        _third_order(reference, inputs)

    def penalty_gradient(x, w, b):
        y = fn(x, w, b)
        (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        return torch.autograd.grad(gx.square().sum() + y.mean(), w, create_graph=True)[0]

    assert torch.autograd.gradcheck(penalty_gradient, inputs)


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transpose"])
def test_gradcheck_and_gradgradcheck(transpose, rng, switches):
    nvlabs_gradfix.enabled = True
    case = (transpose, 1, 2, 2, 3, 4, 2, 3, 2, 1, 1, 2, 1 if transpose else 0)
    fn, _, inputs = _case(case, rng, nvlabs_gradfix)
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("style", list(MODULES))
def test_disabled_is_torch_itself(style, rng, switches):
    """Not ``enabled``, the functions are torch's (bit for bit, its own autograd nodes)."""
    module = MODULES[style]
    module.enabled = False
    x = testing.make_tensor([2, 3, 5, 5], generator=rng, requires_grad=True)
    w = testing.make_tensor([4, 3, 3, 3], generator=rng, requires_grad=True)
    y = module.conv2d(x, w, stride=2, padding=1)
    assert torch.equal(y, F.conv2d(x, w, stride=2, padding=1))
    assert "Convolution" in type(y.grad_fn).__name__
    wt = testing.make_tensor([3, 2, 3, 3], generator=rng)
    assert torch.equal(
        module.conv_transpose2d(x, wt, stride=2), F.conv_transpose2d(x, wt, stride=2)
    )


def _discriminator(ops, weights):
    """A tiny D (strided conv, grouped transposed conv, 1x1 conv) through ``ops``."""

    def D(img):
        x = F.leaky_relu(ops.conv2d(img, weights[0], weights[3], stride=2, padding=1), 0.2)
        x = F.leaky_relu(ops.conv_transpose2d(x, weights[1], groups=2, padding=1), 0.2)
        return ops.conv2d(x, weights[2]).mean([1, 2, 3])

    return D


def _r1_step(D, img, no_weight_gradients):
    """Their loss's R1 step: logits, the image gradient inside ``no_weight_gradients``, the
    penalty's backward outside it. Returns the image gradient."""
    logits = D(img)
    with no_weight_gradients():
        (r1_grads,) = torch.autograd.grad(logits.sum(), img, create_graph=True)
    (r1_grads.square().sum([1, 2, 3]).mean() + logits.square().sum()).backward()
    return r1_grads


@pytest.mark.parametrize("style", list(MODULES))
@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
def test_no_weight_gradients_in_the_r1_pattern(style, enabled, rng, switches):
    """As their loss runs R1, every gradient equals plain torch's, the weights' included
    (they come through the differentiated image gradient, outside the context)."""
    module = MODULES[style]
    module.enabled = enabled
    shapes = ([4, 3, 3, 3], [4, 2, 3, 3], [1, 4, 1, 1], [4])
    weights = [testing.make_tensor(s, torch.float64, generator=rng) for s in shapes]
    img = testing.make_tensor([2, 3, 6, 6], torch.float64, generator=rng)
    plain = type("plain", (), {"conv2d": F.conv2d, "conv_transpose2d": F.conv_transpose2d})
    results = {}
    for name, ops, context in [
        ("ours", module, module.no_weight_gradients),
        ("torch", plain, contextlib.nullcontext),
    ]:
        leaves = [t.clone().requires_grad_(True) for t in [img, *weights]]
        r1_grads = _r1_step(_discriminator(ops, leaves[1:]), leaves[0], context)
        results[name] = [r1_grads] + [t.grad for t in leaves]
    assert module.weight_gradients_disabled is False
    names = ["R1 image gradient", "image gradient"] + [f"weight {i}" for i in range(4)]
    for name, got, want in zip(names, results["ours"], results["torch"]):
        testing.assert_close(got, want, what=name)


@pytest.mark.parametrize("style", list(MODULES))
def test_no_weight_gradients_skips_only_conv_weights(style, rng, switches):
    """A backward run inside the context leaves conv weights without gradient (None, as
    theirs: ``autograd.grad`` needs ``allow_unused``) and every other gradient as torch's."""
    module = MODULES[style]
    module.enabled = True
    x = testing.make_tensor([2, 3, 5, 5], torch.float64, generator=rng, requires_grad=True)
    w = testing.make_tensor([4, 3, 3, 3], torch.float64, generator=rng, requires_grad=True)
    wt = testing.make_tensor([4, 2, 2, 2], torch.float64, generator=rng, requires_grad=True)
    b = testing.make_tensor([2], torch.float64, generator=rng, requires_grad=True)

    def net(conv2d, conv_transpose2d, x):
        return conv_transpose2d(conv2d(x, w, padding=1).tanh(), wt, b, stride=2).square().sum()

    with module.no_weight_gradients():
        net(module.conv2d, module.conv_transpose2d, x).backward()
        loss = net(module.conv2d, module.conv_transpose2d, x)
        assert torch.autograd.grad(loss, (x, w), allow_unused=True)[1] is None
        with pytest.raises(RuntimeError, match="not have been used in the graph"):
            torch.autograd.grad(net(module.conv2d, module.conv_transpose2d, x), (x, w))
    assert w.grad is None and wt.grad is None
    want_x, want_b = torch.autograd.grad(net(F.conv2d, F.conv_transpose2d, x), (x, b))
    testing.assert_close(x.grad, want_x, what="input gradient")
    testing.assert_close(b.grad, want_b, what="bias gradient")
    # Outside the context the weights get theirs again.
    net(module.conv2d, module.conv_transpose2d, x).backward()
    assert w.grad is not None and wt.grad is not None


def test_switch_scopes(switches):
    """Each package has its own switch; the context restores it after an exception; NVlabs'
    ``disable=False`` leaves it; nested contexts restore the outer state."""
    with rosinality_gradfix.no_weight_gradients():
        assert rosinality_gradfix.weight_gradients_disabled
        assert not nvlabs_gradfix.weight_gradients_disabled
    with pytest.raises(KeyError):
        with nvlabs_gradfix.no_weight_gradients():
            raise KeyError
    assert not nvlabs_gradfix.weight_gradients_disabled
    with nvlabs_gradfix.no_weight_gradients(False):
        assert not nvlabs_gradfix.weight_gradients_disabled
        with nvlabs_gradfix.no_weight_gradients():
            assert nvlabs_gradfix.weight_gradients_disabled
        assert not nvlabs_gradfix.weight_gradients_disabled


def test_bad_inputs(switches):
    nvlabs_gradfix.enabled = True
    x, w = torch.randn(1, 2, 5, 5), torch.randn(2, 2, 3, 3)
    with pytest.raises(TypeError, match="padding must be an int"):
        nvlabs_gradfix.conv2d(x, w, padding="same")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        nvlabs_gradfix.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="groups must be >= 1"):
        nvlabs_gradfix.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match=r"dilation must be an int or a pair"):
        nvlabs_gradfix.conv2d(x, w, dilation=(1, 1, 1))
    with pytest.raises(ValueError, match=r"input must have 4 dimensions"):
        nvlabs_gradfix.conv2d(x[0], w)
    with pytest.raises(ValueError, match=r"output_padding must be smaller than max"):
        nvlabs_gradfix.conv_transpose2d(x, w, stride=2, output_padding=2)
