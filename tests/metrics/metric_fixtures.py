"""Helpers for the metric tests: a small random-init CNN as feature network, a linear
generator following the models' call contract (``mapping``, ``synthesis``, ``z_dim``, ...)
whose PPL is known in closed form, a blur, and a "generator" that hands out given images.
Test fixtures, not product code."""

import torch
import torch.nn.functional as F


class LinearGenerator(torch.nn.Module):
    """``mapping(z) = [z, z]`` (identity, broadcast to 2 layers; no normalisation, so the
    norm of z reaches the image) and ``synthesis(w) = A0 w[:, 0] + A1 w[:, 1]`` reshaped to
    ``[N, 3, R, R]``; float64. ``squash``: tanh of the images (keeps them in [-1, 1]).
    ``calls`` records each mapping/synthesis call with its inputs. Noiseless: ``generator``
    (the contract's noise generator) is accepted and unused."""

    def __init__(self, z_dim=6, resolution=8, seed=0, squash=False, c_dim=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        pixels = 3 * resolution * resolution
        self.z_dim = self.w_dim = z_dim
        self.c_dim = c_dim
        self.num_ws = 2
        self.resolution = resolution
        self.img_channels = 3
        self.squash = squash
        scale = 1 / z_dim**0.5
        self.A0 = torch.nn.Parameter(
            torch.randn(pixels, z_dim, generator=g, dtype=torch.float64) * scale
        )
        self.A1 = torch.nn.Parameter(
            torch.randn(pixels, z_dim, generator=g, dtype=torch.float64) * scale
        )
        self.label_shift = torch.nn.Parameter(
            torch.randn(max(c_dim, 1), z_dim, generator=g, dtype=torch.float64)
        )
        self.calls = []

    @property
    def A(self):
        """The map from a w broadcast to both layers to the flat image."""
        return self.A0 + self.A1

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        self.calls.append(("mapping", z.clone(), None if c is None else c.clone(), truncation_psi))
        w = z
        if self.c_dim:
            w = w + c.to(z.dtype) @ self.label_shift
        w = w * truncation_psi
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, w, noise_mode="random", noise=None, generator=None):
        self.calls.append(("synthesis", w.clone(), noise_mode))
        x = w[:, 0] @ self.A0.T + w[:, 1] @ self.A1.T
        x = x.view(-1, 3, self.resolution, self.resolution)
        return torch.tanh(x) if self.squash else x

    def forward(
        self,
        z,
        c=None,
        truncation_psi=1.0,
        truncation_cutoff=None,
        noise_mode="random",
        generator=None,
    ):
        return self.synthesis(self.mapping(z, c, truncation_psi), noise_mode=noise_mode)


def make_cnn(seed=0, features=32):
    """A small random-init CNN ``[N, 3, H, W] -> [N, features]``: random conv features are
    enough to tell sharp faces from blurred or noisy ones."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, features, 3, padding=1, stride=2),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )


def blur(images, sigma=1.5):
    """Separable Gaussian blur with reflect padding."""
    radius = 3
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = images.shape[1]
    out = F.pad(images, [radius] * 4, mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def sequential_generator(images):
    """``generator_fn(batch)`` handing out ``images`` in order (a "generator" whose outputs
    are given)."""
    position = [0]

    def generate(batch):
        out = images[position[0] : position[0] + batch]
        position[0] += batch
        return out

    return generate
