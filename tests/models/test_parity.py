"""Whole-model parity: the same weights, inputs and noise through impl='ref' and every CPU
backend the models' ops implement; outputs and every parameter gradient of G (style-mixed,
truncated, const noise) and D, R1 through D, progressive fade-in, and torch.compile."""

import pytest
import torch

from stylegan_fast import testing
from stylegan_fast.models import mix_ws

MODEL_OPS = ("bias_act", "noise_injection", "layer_epilogue", "upfirdn2d")


def model_backends() -> list[str]:
    """CPU backends every op of the models implements (an explicit impl must serve every op,
    so a backend only some ops have cannot run a whole model)."""
    per_op = [set(testing.implemented_backends(op, "cpu")) for op in MODEL_OPS]
    # Sorted: a set's order changes with the hash seed, and pytest-xdist's workers must
    # collect the same test ids in the same order.
    return sorted(b for b in per_op[0] if all(b in s for s in per_op))


FAST_BACKENDS = [b for b in model_backends() if b != "ref"]
# Norm-wise relative error allowed between two float32 runs of the whole model. Measured
# against a float64 run of the tiny G: ~1.5e-6 for both ref and cpp, on outputs and on every
# parameter gradient; cpp vs ref here: at most 1.7e-6 (G) and 5.2e-6 (D, R1 included).
# 512 unit roundoffs (3.1e-5) leaves 6x headroom, while a wrong kernel (a missed channel, a
# wrong gradient term) gives errors of 1e-3 and up.
RTOL = 512 * testing.UNIT_ROUNDOFF[torch.float32]


def require(impl):
    for op in MODEL_OPS:
        testing.require_backend(op, impl, "cpu")


def check(actual, expected, what):
    err = testing.relative_error(actual, expected)
    assert err <= RTOL, f"{what}: relative error {err:.2e} > {RTOL:.2e}"


def generator_run(G, impl, z, lod):
    G.set_impl(impl)
    if G.progressive:
        G.set_lod(lod)
    G.zero_grad()
    w = G.mapping(z, truncation_psi=0.7, truncation_cutoff=4)
    w = mix_ws([w, G.mapping(z.flip(0))], [3])
    img = G.synthesis(w, noise_mode="const")
    grad_out = torch.randn(img.shape, generator=torch.Generator().manual_seed(1))
    img.backward(grad_out)
    return img.detach(), {n: p.grad for n, p in G.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("impl", FAST_BACKENDS)
@pytest.mark.parametrize("lod", [None, 1.5])
def test_generator_parity(impl, lod, tiny_generator):
    require(impl)
    G = tiny_generator(progressive=lod is not None)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    expected_img, expected = generator_run(G, "ref", z, lod)
    img, grads = generator_run(G, impl, z, lod)
    check(img, expected_img, "image")
    assert grads.keys() == expected.keys()
    # Fixed: every parameter has a gradient. lod 1.5 (16x16 faded over 8x8): all but the
    # 32x32 block's and the 4x4 toRGB's, which that level does not use.
    unused = {n for n, _ in G.named_parameters() if "blocks.3." in n or "blocks.0.torgb" in n}
    assert set(grads) == {n for n, _ in G.named_parameters()} - (unused if lod else set())
    for name in expected:
        check(grads[name], expected[name], name)


def discriminator_run(D, impl, x, lod, r1):
    D.set_impl(impl)
    if D.progressive:
        D.set_lod(lod)
    D.zero_grad()
    x = x.detach().requires_grad_(True)
    logits = D(x)
    if r1:
        # R1: the penalty differentiates through D's backward (double backward).
        (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        loss = g.square().sum(dim=(1, 2, 3)).mean() + logits.square().mean()
    else:
        loss = (logits * torch.linspace(-1, 1, len(logits))[:, None]).sum()
    (dx,) = torch.autograd.grad(loss, x, retain_graph=True)
    loss.backward()
    grads = {n: p.grad for n, p in D.named_parameters() if p.grad is not None}
    return logits.detach(), dx, grads


@pytest.mark.parametrize("impl", FAST_BACKENDS)
@pytest.mark.parametrize("r1, lod", [(False, None), (True, None), (True, 0.5)])
def test_discriminator_and_r1_parity(impl, r1, lod, tiny_discriminator):
    require(impl)
    D = tiny_discriminator(progressive=lod is not None)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    expected_logits, expected_dx, expected = discriminator_run(D, "ref", x, lod, r1)
    logits, dx, grads = discriminator_run(D, impl, x, lod, r1)
    check(logits, expected_logits, "logits")
    check(dx, expected_dx, "input gradient")
    assert grads.keys() == expected.keys()
    # lod 0.5 reads the image through the 32x32 and 16x16 fromRGBs only.
    unused = {n for n, _ in D.named_parameters() if n.startswith(("fromrgb.0", "fromrgb.1"))}
    assert set(grads) == {n for n, _ in D.named_parameters()} - (unused if lod else set())
    for name in expected:
        check(grads[name], expected[name], name)


@pytest.mark.slow
def test_compiled_generator_matches_eager(tiny_generator):
    """fullgraph=True: the forward traces without graph breaks (custom ops included), and the
    compiled forward and backward match eager. aot_eager traces what inductor would get;
    inductor's own code generation takes minutes on this machine's CPUs."""
    impl = FAST_BACKENDS[0] if FAST_BACKENDS else "ref"
    G = tiny_generator().set_impl(impl)
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    kwargs = dict(truncation_psi=0.7, truncation_cutoff=4, noise_mode="const")
    expected = G(z, **kwargs)
    expected_grads = torch.autograd.grad(expected.square().sum(), list(G.parameters()))
    torch._dynamo.reset()
    compiled = torch.compile(G, fullgraph=True, backend="aot_eager")
    img = compiled(z, **kwargs)
    torch.testing.assert_close(img, expected, rtol=1e-6, atol=1e-6)
    grads = torch.autograd.grad(img.square().sum(), list(G.parameters()))
    for a, e in zip(grads, expected_grads):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)
