"""Every compat shim traces with ``torch.compile(fullgraph=True)`` (argument mapping is plain
Python on static values) and the compiled function equals eager, forward and backward."""

import pytest
import torch

from stylegan_fast import testing
from stylegan_fast.compat import nvlabs, rosinality

BLUR = [1, 3, 3, 1]


@pytest.mark.slow
def test_shims_compile_fullgraph(rng):
    f = nvlabs.upfirdn2d.setup_filter(BLUR)
    taps = torch.tensor(BLUR, dtype=torch.float32)
    kernel = torch.outer(taps, taps) / taps.sum() ** 2
    activate = rosinality.FusedLeakyReLU(3)
    with torch.no_grad():
        activate.bias.normal_(generator=rng)

    def layer(x, b):
        y = nvlabs.bias_act.bias_act(x, b, act="swish", clamp=4)
        y = nvlabs.bias_act.bias_act(y, b, act="elu", alpha=0.5, impl="ref")
        y = nvlabs.upfirdn2d.upsample2d(y, f)
        y = nvlabs.upfirdn2d.downsample2d(y, f)
        y = nvlabs.upfirdn2d.filter2d(y, f, padding=[1, 0])
        y = nvlabs.upfirdn2d.upfirdn2d(y, f, up=2, down=2, padding=1, flip_filter=True)
        y = rosinality.fused_leaky_relu(y, b, negative_slope=0.1) + activate(y)
        return rosinality.upfirdn2d(y, kernel, up=2, pad=(2, 1))

    x = testing.make_tensor([2, 3, 6, 5], generator=rng, requires_grad=True)
    b = testing.make_tensor([3], generator=rng, requires_grad=True)
    wrt = (x, b, activate.bias)
    want = layer(x, b)
    cotangent = testing.make_tensor(want.shape, generator=rng)
    want_grads = torch.autograd.grad(want, wrt, cotangent)
    got = torch.compile(layer, fullgraph=True)(x, b)
    got_grads = torch.autograd.grad(got, wrt, cotangent)
    testing.assert_close(got, want.double(), what="compiled output")
    for g, w, name in zip(got_grads, want_grads, ("x", "b", "FusedLeakyReLU.bias")):
        testing.assert_close(g, w.double(), what=f"compiled gradient of {name}")
