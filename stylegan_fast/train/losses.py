"""StyleGAN's losses: the non-saturating logistic loss with R1 on reals (optionally lazy), and
PGGAN's WGAN-GP with its drift term.

Written against the model contract only: ``G.mapping``/``G.synthesis`` (through
``style_mix(G, z, c, prob, generator)``) and ``D(img, c) -> logits [N, 1]``, so any modules
that follow it can be trained. Every loss is a mean over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LOSSES = ("logistic", "wgan-gp")
# The StyleGANLoss options a training config carries under the same names
# (:meth:`StyleGANLoss.from_config`).
CONFIG_FIELDS = (
    "loss",
    "r1_gamma",
    "r1_interval",
    "style_mixing_prob",
    "wgan_lambda",
    "wgan_epsilon",
    "wgan_target",
)


def generator_logistic_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating loss ``mean(softplus(-D(G(z))))`` = ``-mean(log sigmoid(D(G(z))))``."""
    return F.softplus(-fake_logits).mean()


def discriminator_logistic_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> torch.Tensor:
    """``mean(softplus(D(fake))) + mean(softplus(-D(real)))``: the logistic loss of
    classifying reals as 1 and fakes as 0."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def input_gradient_penalty(
    D: Callable, images: torch.Tensor, c: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum over C, H, W of (d D(x) / d x)², logits)`` per sample, with the graph kept so
    the penalty can be differentiated with respect to D's parameters (double backward).

    Args:
        images: ``[N, C, H, W]``; a detached copy is differentiated, so ``images`` may be a
            non-leaf.
    Returns:
        ``penalty: [N]``, ``logits: [N, 1]``.
    """
    x = images.detach().requires_grad_(True)
    logits = D(x, c)
    (gradient,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return gradient.square().sum(dim=tuple(range(1, gradient.ndim))), logits


def r1_penalty(D: Callable, real_images: torch.Tensor, real_c: torch.Tensor | None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): ``mean(|grad_x D(x)|²)`` over real images. ``[]``."""
    penalty, logits = input_gradient_penalty(D, real_images, real_c)
    # logits * 0 puts every D parameter in the graph (the last bias gets no gradient from
    # the penalty), so gradient all-reduce and unused-parameter checks see them all.
    return penalty.mean() + (logits * 0).mean()


def wgan_gradient_penalty(
    D: Callable,
    real_images: torch.Tensor,
    fake_images: torch.Tensor,
    c: torch.Tensor | None,
    target: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017) as PGGAN: at ``x = lerp(real, fake, u)``, ``u ~ U(0, 1)``
    per sample, ``mean((|grad_x D(x)| - target)² / target²)``. ``[]``."""
    n = real_images.shape[0]
    # Drawn on the generator's device (a CPU generator can drive a CUDA run reproducibly).
    draw_device = generator.device if generator is not None else real_images.device
    mix = torch.rand(
        n, *([1] * (real_images.ndim - 1)), generator=generator, device=draw_device
    ).to(real_images.device, real_images.dtype)
    mixed = torch.lerp(real_images.detach(), fake_images.detach(), mix)
    squared_norm, _ = input_gradient_penalty(D, mixed, c)
    return ((squared_norm.sqrt() - target).square() / target**2).mean()


def lazy_regularization_adam(
    lr: float, betas: tuple[float, float], interval: int
) -> tuple[float, tuple[float, float]]:
    """Adam's lr and betas for a network regularised every ``interval`` steps (StyleGAN2):
    ``ratio = k / (k + 1)``, ``lr * ratio``, ``beta ** ratio``, so the optimizer's effective
    momentum per image stays what it is without lazy regularization. ``interval=1`` returns
    them unchanged."""
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError(f"interval must be a positive int, got {interval!r}")
    if interval == 1:
        return lr, tuple(betas)
    ratio = interval / (interval + 1)
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)


class StyleGANLoss:
    """The loss terms of one training step, for the generator ``G`` and discriminator ``D``.

    Args:
        G, D: modules following the model contract (``D`` may be any callable ``D(img, c)``).
        loss: "logistic" (StyleGAN: non-saturating logistic + R1) or "wgan-gp" (PGGAN).
        r1_gamma: R1 weight gamma; the penalty added is ``gamma / 2 * R1``. 0 disables it.
        r1_interval: lazy regularization: R1 is computed every ``r1_interval`` D steps and
            scaled by ``r1_interval`` (StyleGAN computes it every step, 1; StyleGAN2 uses 16).
        style_mixing_prob: probability of mixing two latents in a minibatch (StyleGAN: 0.9).
        wgan_lambda, wgan_epsilon, wgan_target: WGAN-GP's penalty weight, drift weight
            (``epsilon * mean(D(real)²)`` keeps the logits near 0), and gradient-norm target.
        style_mix_fn: ``(G, z, c, prob, generator) -> w``; default
            ``stylegan_fast.models.style_mix``.
    """

    def __init__(
        self,
        G: torch.nn.Module,
        D: Callable,
        loss: str = "logistic",
        r1_gamma: float = 10.0,
        r1_interval: int = 1,
        style_mixing_prob: float = 0.9,
        wgan_lambda: float = 10.0,
        wgan_epsilon: float = 0.001,
        wgan_target: float = 1.0,
        style_mix_fn: Callable | None = None,
    ):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        for name, value in (
            ("r1_gamma", r1_gamma),
            ("wgan_lambda", wgan_lambda),
            ("wgan_epsilon", wgan_epsilon),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if isinstance(r1_interval, bool) or not isinstance(r1_interval, int) or r1_interval < 1:
            raise ValueError(f"r1_interval must be a positive int, got {r1_interval!r}")
        if not isinstance(style_mixing_prob, (int, float)) or not 0 <= style_mixing_prob <= 1:
            raise ValueError(f"style_mixing_prob must be in [0, 1], got {style_mixing_prob!r}")
        if not isinstance(wgan_target, (int, float)) or not wgan_target > 0:
            raise ValueError(f"wgan_target must be > 0, got {wgan_target!r}")
        self.G = G
        self.D = D
        self.loss = loss
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = r1_interval
        self.style_mixing_prob = float(style_mixing_prob)
        self.wgan_lambda = float(wgan_lambda)
        self.wgan_epsilon = float(wgan_epsilon)
        self.wgan_target = float(wgan_target)
        self._style_mix_fn = style_mix_fn

    @classmethod
    def from_config(
        cls, G: torch.nn.Module, D: Callable, config, style_mix_fn: Callable | None = None
    ) -> StyleGANLoss:
        """The loss a training config asks for: its :data:`CONFIG_FIELDS` (``loss``,
        ``r1_gamma``, ...) read by name from ``config`` (a :class:`~.config.TrainingConfig` or
        anything with those attributes)."""
        options = {name: getattr(config, name) for name in CONFIG_FIELDS}
        return cls(G, D, **options, style_mix_fn=style_mix_fn)

    def generate(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None,
        generator: torch.Generator | None = None,
        noise_generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Fake images ``[N, C, R, R]`` from ``z: [N, z_dim]``, style-mixed with probability
        ``style_mixing_prob`` (draws from ``generator``), random synthesis noise drawn from
        ``noise_generator`` (a generator of the images' device; None: torch's default)."""
        style_mix = self._style_mix_fn
        if style_mix is None:
            from stylegan_fast.models import style_mix
        w = style_mix(self.G, z, c, prob=self.style_mixing_prob, generator=generator)
        # Passed only when given: a synthesis without a generator argument (the benchmarks'
        # plain-PyTorch peer) still trains with torch's default one.
        noise = {} if noise_generator is None else {"generator": noise_generator}
        return self.G.synthesis(w, noise_mode="random", **noise)

    def generator_loss(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None,
        generator: torch.Generator | None = None,
        noise_generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's loss on a batch of fakes: ``(loss [], stats)``; stats are detached tensors.
        ``generator``, ``noise_generator``: as for :meth:`generate`."""
        fake_logits = self.D(self.generate(z, c, generator, noise_generator), c)
        if self.loss == "logistic":
            loss = generator_logistic_loss(fake_logits)
        else:
            loss = -fake_logits.mean()
        return loss, {"loss/G": loss.detach(), "logits/fake": fake_logits.detach().mean()}

    def discriminator_loss(
        self,
        real_images: torch.Tensor,
        real_c: torch.Tensor | None,
        z: torch.Tensor,
        gen_c: torch.Tensor | None,
        generator: torch.Generator | None = None,
        noise_generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's main loss: reals vs fakes from ``z`` (G gets no gradient); for "wgan-gp" it
        includes the gradient penalty and the drift term. ``(loss [], stats)``.
        ``generator``, ``noise_generator``: as for :meth:`generate`."""
        with torch.no_grad():
            fake_images = self.generate(z, gen_c, generator, noise_generator)
        fake_logits = self.D(fake_images, gen_c)
        real_logits = self.D(real_images, real_c)
        stats = {
            "logits/fake": fake_logits.detach().mean(),
            "logits/real": real_logits.detach().mean(),
        }
        if self.loss == "logistic":
            loss = discriminator_logistic_loss(real_logits, fake_logits)
        else:
            loss = fake_logits.mean() - real_logits.mean()
            penalty = wgan_gradient_penalty(
                self.D, real_images, fake_images, real_c, self.wgan_target, generator
            )
            drift = real_logits.square().mean()
            loss = loss + self.wgan_lambda * penalty + self.wgan_epsilon * drift
            stats["penalty/gp"] = penalty.detach()
        stats["loss/D"] = loss.detach()
        return loss, stats

    def is_regularization_step(self, d_step: int) -> bool:
        """Whether D step ``d_step`` (counting from 0) adds R1 (logistic loss, gamma > 0)."""
        return self.loss == "logistic" and self.r1_gamma > 0 and d_step % self.r1_interval == 0

    def discriminator_regularization(
        self, real_images: torch.Tensor, real_c: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """R1 term for a regularization step: ``gamma / 2 * R1 * r1_interval``.
        ``(loss [], stats)``."""
        penalty = r1_penalty(self.D, real_images, real_c)
        loss = penalty * (0.5 * self.r1_gamma * self.r1_interval)
        return loss, {"penalty/r1": penalty.detach(), "loss/D_reg": loss.detach()}
