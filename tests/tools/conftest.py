"""A tiny-preset generator exported to a file, shared by the tool tests."""

import pytest
import torch

from stylegan_fast.models import Generator
from stylegan_fast.train.checkpoint import export_generator, load_generator


@pytest.fixture(scope="session")
def network(tmp_path_factory):
    """Path of an exported tiny generator whose w_avg is the mean w of 256 latents (so the
    truncation trick has something to pull towards) and whose noise strengths are 0.3 (they
    start at 0, which would hide the noise)."""
    torch.manual_seed(1234)
    G = Generator.from_preset("tiny")
    with torch.no_grad():
        for name, parameter in G.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.3)
        G.mapping.w_avg.copy_(G.mapping(torch.randn(256, G.z_dim))[:, 0].mean(0))
    path = tmp_path_factory.mktemp("net") / "G.safetensors"
    export_generator(path, G)
    return path


@pytest.fixture(scope="session")
def G(network):
    return load_generator(network, device="cpu")
