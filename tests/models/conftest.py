"""Shared helpers for the model tests: randomised tiny models (every parameter nonzero, so no
term hides behind a zero initialisation)."""

import pytest
import torch

from stylegan_fast.models import Discriminator, Generator


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Perturbs every parameter (by ~20% of its typical size, so lr-multiplied layers stay in
    range), draws the constant input from N(0, 1) (an all-positive constant makes the first
    bias's gradient cancel exactly), and sets ``w_avg`` away from zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if name.endswith("const"):
                p.copy_(noise)
            else:
                p.add_(noise * 0.2 * (p.abs().mean() + 0.1))
        for name, b in model.named_buffers():
            if name.endswith("w_avg"):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype))
    return model


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread per test: the tiny models' tensors are too small to split, and on
    a shared machine a second OpenMP thread that is descheduled stalls every op (measured: a
    [2, 64] x [64, 64] matmul took 65 ms with 2 threads at load 12, 0.5 ms with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_generator():
    def make(seed=0, **overrides):
        torch.manual_seed(seed)
        return randomize_(Generator.from_preset("tiny", **overrides), seed)

    return make


@pytest.fixture
def tiny_discriminator():
    def make(seed=0, **overrides):
        torch.manual_seed(seed)
        return randomize_(Discriminator.from_preset("tiny", **overrides), seed)

    return make
