"""GPU-only model tests: CUDA-graph generation, and whole-model parity of the CUDA backends
against the reference on the GPU. Skipped (with the reason) where no GPU is present."""

import pytest
import torch

from stylegan_fast import testing
from stylegan_fast.models import Discriminator, Generator, mix_ws

MODEL_OPS = ("bias_act", "noise_injection", "layer_epilogue", "upfirdn2d")
CUDA_BACKENDS = [
    b
    for b in testing.implemented_backends("layer_epilogue", "cuda")
    if b != "ref" and all(b in testing.implemented_backends(op, "cuda") for op in MODEL_OPS)
]


def relative_error(a, e):
    return testing.relative_error(a.float().cpu(), e.float().cpu())


@pytest.mark.cuda
def test_compile_graph_replays_the_generator():
    torch.manual_seed(0)
    G = Generator.from_preset("tiny", c_dim=2).cuda().eval()
    graphed = G.compile_graph(4, truncation_psi=0.7, truncation_cutoff=4, noise_mode="const")
    c = torch.eye(2, device="cuda")[[0, 1, 0, 1]]
    for seed in range(2):  # new inputs each call: the graph reads its static buffers
        z = torch.randn(4, G.z_dim, device="cuda", generator=None)
        with torch.no_grad():
            expected = G(z, c, truncation_psi=0.7, truncation_cutoff=4, noise_mode="const")
        out = graphed(z, c)
        assert relative_error(out, expected) < 1e-5, seed
    with pytest.raises(ValueError, match="captured batch"):
        graphed(torch.randn(3, G.z_dim, device="cuda"), c[:3])
    random = G.compile_graph(4, noise_mode="random")
    z = torch.randn(4, G.z_dim, device="cuda")
    assert not torch.equal(random(z), random(z))  # fresh noise on each replay


@pytest.mark.cuda
def test_compile_graph_follows_weight_updates_and_fade():
    torch.manual_seed(0)
    G = Generator.from_preset("tiny", progressive=True).cuda()
    G.set_lod(1.25)
    graphed = G.compile_graph(2)
    z = torch.randn(2, G.z_dim, device="cuda")
    with torch.no_grad():
        for p in G.parameters():
            p.mul_(1.1)  # in place, as an optimizer step: the graph sees it
        G.set_lod(1.75)  # same block structure; the fade fraction is read at replay
        expected = G(z, noise_mode="const")
    assert relative_error(graphed(z), expected) < 1e-5


@pytest.mark.cuda
@pytest.mark.parametrize("impl", CUDA_BACKENDS or ["cuda"])
def test_cuda_model_parity(impl):
    for op in MODEL_OPS:
        testing.require_backend(op, impl, "cuda")
    torch.manual_seed(0)
    G = Generator.from_preset("tiny").cuda()
    D = Discriminator.from_preset("tiny").cuda()
    z = torch.randn(4, G.z_dim, device="cuda")
    results = {}
    for backend in ("ref", impl):
        G.set_impl(backend)
        D.set_impl(backend)
        G.zero_grad()
        D.zero_grad()
        w = mix_ws([G.mapping(z, truncation_psi=0.7), G.mapping(z.flip(0))], [3])
        img = G.synthesis(w, noise_mode="const")
        x = img.detach().requires_grad_(True)
        logits = D(x)
        (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        (img.square().mean() + g.square().sum() + logits.mean()).backward()
        grads = [p.grad.clone() for p in (*G.parameters(), *D.parameters())]
        results[backend] = (img.detach(), logits.detach(), grads)
    for a, e in zip(results[impl][:2], results["ref"][:2]):
        assert relative_error(a, e) < 1e-4
    for a, e in zip(results[impl][2], results["ref"][2]):
        assert relative_error(a, e) < 1e-4  # TF32 convolutions are shared by both runs
