"""Test fixtures for the training code: tiny plain-PyTorch modules that follow the generator /
discriminator call contract of ``stylegan_fast.models`` (test doubles only, never product code),
and small image files."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn


@dataclasses.dataclass
class TinyConfig:
    z_dim: int = 4
    w_dim: int = 4
    num_ws: int = 3
    resolution: int = 4
    img_channels: int = 3
    c_dim: int = 0
    progressive: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, values: dict) -> TinyConfig:
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TinyConfig:
        return cls.from_dict(json.loads(text))


class TinyGenerator(nn.Module):
    """``mapping(z, c) -> w [N, num_ws, w_dim]``; ``synthesis(w) -> img [N, 3, R, R]`` where
    layer i's style ``w[:, i]`` drives its own linear map (so style mixing changes the output),
    plus random per-pixel noise from ``generator`` (None: torch's global one) when
    ``noise_mode='random'``."""

    def __init__(self, config: TinyConfig | None = None, impl: str = "auto"):
        super().__init__()
        self.config = config or TinyConfig()
        self.impl = impl
        c = self.config
        self.z_dim, self.w_dim, self.num_ws = c.z_dim, c.w_dim, c.num_ws
        self.resolution, self.img_channels, self.c_dim = c.resolution, c.img_channels, c.c_dim
        self.mapping_layer = nn.Linear(c.z_dim + c.c_dim, c.w_dim)
        pixels = c.img_channels * c.resolution**2
        self.synthesis_layers = nn.ModuleList(nn.Linear(c.w_dim, pixels) for _ in range(c.num_ws))
        self.noise_strength = nn.Parameter(torch.full([], 0.1))
        self.register_buffer("w_avg", torch.zeros(c.w_dim))
        self.register_buffer("lod", torch.zeros([]))

    @classmethod
    def from_config(cls, config: TinyConfig, impl: str = "auto") -> TinyGenerator:
        return cls(config, impl)

    def set_lod(self, lod: float) -> None:
        if not self.config.progressive and lod != 0:
            raise ValueError("not progressive")
        self.lod.fill_(lod)

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        x = z if c is None or c.shape[1] == 0 else torch.cat([z, c], dim=1)
        w = torch.tanh(self.mapping_layer(x))
        if update_w_avg:
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, 0.995))
        w = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            w = self.w_avg.lerp(w, truncation_psi)
        return w

    def synthesis(self, w, noise_mode="random", noise=None, generator=None):
        n, r = w.shape[0], self.resolution
        img = sum(layer(w[:, i]) for i, layer in enumerate(self.synthesis_layers))
        img = img.view(n, self.img_channels, r, r) * (1 + 0.1 * self.lod)
        if noise_mode == "random":
            noise = torch.randn(n, 1, r, r, dtype=img.dtype, device=img.device, generator=generator)
            img = img + self.noise_strength * noise
        return img

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random"):
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), noise_mode)


class TinyDiscriminator(nn.Module):
    """``D(img [N, 3, R, R], c) -> logits [N, 1]``: a conv, a smooth nonlinearity (softplus:
    nonzero second derivative, so R1's double backward is exercised), a linear head."""

    def __init__(self, resolution: int = 4, channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2, 3, padding=1)
        self.head = nn.Linear(2 * resolution * resolution, 1)
        self.register_buffer("lod", torch.zeros([]))

    def set_lod(self, lod: float) -> None:
        self.lod.fill_(lod)

    def forward(self, img, c=None):
        features = torch.nn.functional.softplus(self.conv(img)).flatten(1)
        return self.head(features) * (1 + 0.1 * self.lod)


def style_mix(G, z, c=None, prob=0.9, generator=None):
    """The contract's ``style_mix``: w of z; with probability ``prob`` a second latent's w
    from a random crossover layer on (one draw per minibatch, from ``generator``)."""
    w = G.mapping(z, c)
    draw = torch.rand([], generator=generator)
    crossover = int(torch.randint(1, G.num_ws, [], generator=generator))
    if draw < prob:
        z2 = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
        w2 = G.mapping(z2, c)
        w = torch.cat([w[:, :crossover], w2[:, crossover:]], dim=1)
    return w


def png_bytes(array: np.ndarray, **save_options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **save_options)
    return buffer.getvalue()


def write_image(path: Path, array: np.ndarray, format: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(
        path, format=format, **({"quality": 95} if format == "JPEG" else {})
    )
    return path


class TensorDataset(torch.utils.data.Dataset):
    """``(image, label)`` items from fixed tensors, with the datasets' ``label_dim``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        self.images = images
        self.labels = labels if labels is not None else torch.zeros(len(images), 0)
        self.label_dim = self.labels.shape[1]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


def random_images(count: int = 16, resolution: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 3, resolution, resolution, generator=generator) * 2 - 1
