"""A plain-PyTorch reference GAN for the quality runs: a DCGAN (Radford et al. 2016) at 32²
trained with the non-saturating logistic loss and R1 on reals (Mescheder et al. 2018),
written from the math with nothing from this library, so its scores are a yardstick for the
StyleGAN trainer on the same data and image budget."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class DCGANGenerator(torch.nn.Module):
    """``z: [N, z_dim]`` -> ``[N, channels, 32, 32]`` in (-1, 1) (tanh): a dense layer to
    ``4 C x 4 x 4``, three stride-2 transposed convolutions (batch norm + ReLU between)."""

    def __init__(self, z_dim: int = 64, width: int = 64, channels: int = 1):
        super().__init__()
        self.z_dim = z_dim
        self.fc = torch.nn.Linear(z_dim, 4 * width * 16)
        self.bn0 = torch.nn.BatchNorm2d(4 * width)
        self.up1 = torch.nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1)
        self.bn1 = torch.nn.BatchNorm2d(2 * width)
        self.up2 = torch.nn.ConvTranspose2d(2 * width, width, 4, 2, 1)
        self.bn2 = torch.nn.BatchNorm2d(width)
        self.up3 = torch.nn.ConvTranspose2d(width, channels, 4, 2, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(z.shape[0], -1, 4, 4)
        x = F.relu(self.bn0(x))
        x = F.relu(self.bn1(self.up1(x)))
        x = F.relu(self.bn2(self.up2(x)))
        return torch.tanh(self.up3(x))


class DCGANDiscriminator(torch.nn.Module):
    """``[N, channels, 32, 32]`` -> logits ``[N, 1]``: three stride-2 convolutions with leaky
    ReLU (no normalisation, so R1's per-sample input gradient is well defined), a dense
    layer."""

    def __init__(self, width: int = 64, channels: int = 1):
        super().__init__()
        self.convs = torch.nn.ModuleList(
            [
                torch.nn.Conv2d(channels, width, 4, 2, 1),
                torch.nn.Conv2d(width, 2 * width, 4, 2, 1),
                torch.nn.Conv2d(2 * width, 4 * width, 4, 2, 1),
            ]
        )
        self.fc = torch.nn.Linear(4 * width * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.fc(x.flatten(1))


class ReferenceGAN:
    """One DCGAN training run: :meth:`step` takes a batch of reals ``[B, C, 32, 32]``.

    D minimises ``softplus(D(G(z))) + softplus(-D(x)) + gamma / 2 * |grad_x D(x)|²``; G
    minimises ``softplus(-D(G(z)))``; Adam(lr, betas) for both (DCGAN's 2e-4, (0.5, 0.999)).
    """

    def __init__(self, z_dim=64, channels=1, lr=2e-4, betas=(0.5, 0.999), r1_gamma=1.0, seed=0):
        torch.manual_seed(seed)
        self.G = DCGANGenerator(z_dim, channels=channels)
        self.D = DCGANDiscriminator(channels=channels)
        self.G_opt = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.D_opt = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.r1_gamma = r1_gamma
        self.rng = torch.Generator().manual_seed(seed)

    def step(self, reals: torch.Tensor) -> dict[str, float]:
        n = reals.shape[0]
        z = torch.randn(n, self.G.z_dim, generator=self.rng)
        with torch.no_grad():
            fakes = self.G(z)
        x = reals.detach().requires_grad_(self.r1_gamma > 0)
        real_logits = self.D(x)
        loss_d = F.softplus(self.D(fakes)).mean() + F.softplus(-real_logits).mean()
        if self.r1_gamma > 0:
            (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
            loss_d = loss_d + 0.5 * self.r1_gamma * grad.square().flatten(1).sum(1).mean()
        self.D_opt.zero_grad(set_to_none=True)
        loss_d.backward()
        self.D_opt.step()

        z = torch.randn(n, self.G.z_dim, generator=self.rng)
        loss_g = F.softplus(-self.D(self.G(z))).mean()
        self.G_opt.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        loss_g.backward()
        self.D.requires_grad_(True)
        self.G_opt.step()
        return {"loss/D": float(loss_d.detach()), "loss/G": float(loss_g.detach())}

    @torch.no_grad()
    def sample(self, num: int, seed: int = 0, batch: int = 200) -> torch.Tensor:
        """``num`` images from latents seeded with ``seed`` (batch-norm in training mode, i.e.
        batch statistics, as the generator was trained; the running stats are restored)."""
        rng = torch.Generator().manual_seed(seed)
        saved = {k: v.clone() for k, v in self.G.state_dict().items()}
        out = [
            self.G(torch.randn(min(batch, num - s), self.G.z_dim, generator=rng))
            for s in range(0, num, batch)
        ]
        self.G.load_state_dict(saved)
        return torch.cat(out)
