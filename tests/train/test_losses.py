"""Losses against hand-computed values, R1/GP gradients against closed forms and finite
differences, and the generic G/D contract usage."""

import math

import pytest
import torch
from torch import nn
from train_fixtures import TinyDiscriminator, TinyGenerator, style_mix

from stylegan_fast.train import losses
from stylegan_fast.train.losses import StyleGANLoss


class QuadraticD(nn.Module):
    """``D(x) = sum(a * x²) + b`` per sample: ``dD/dx = 2 a x``, so R1 = ``sum(4 a² x²)``."""

    def __init__(self, shape=(2, 3, 3)):
        super().__init__()
        self.a = nn.Parameter(
            torch.linspace(-1, 1, math.prod(shape), dtype=torch.float64).view(shape)
        )
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x, c=None):
        return (self.a * x.square()).sum(dim=(1, 2, 3)).unsqueeze(1) + self.b


class LinearD(nn.Module):
    """``D(x) = <w, x> + b``: the input gradient is ``w`` everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)
        self.b = nn.Parameter(torch.zeros((), dtype=w.dtype))

    def forward(self, x, c=None):
        return (x * self.w).flatten(1).sum(1, keepdim=True) + self.b


def test_logistic_losses_by_hand():
    logits = torch.tensor([[0.0], [math.log(3.0)]], dtype=torch.float64)
    # softplus(-0) = ln 2, softplus(-ln 3) = ln(1 + 1/3)
    expected_g = (math.log(2) + math.log(4 / 3)) / 2
    assert losses.generator_logistic_loss(logits).item() == pytest.approx(expected_g, rel=1e-15)
    real = torch.tensor([[math.log(3.0)]], dtype=torch.float64)
    fake = torch.tensor([[0.0], [-math.log(3.0)]], dtype=torch.float64)
    # mean(softplus(fake)) = (ln 2 + ln(4/3)) / 2; softplus(-ln 3) = ln(4/3)
    expected_d = (math.log(2) + math.log(4 / 3)) / 2 + math.log(4 / 3)
    assert losses.discriminator_logistic_loss(real, fake).item() == pytest.approx(
        expected_d, rel=1e-15
    )
    # Large logits stay finite (softplus, not log(sigmoid)).
    assert torch.isfinite(losses.generator_logistic_loss(torch.tensor([[-1000.0]])))


def test_r1_matches_the_closed_form_and_its_gradient():
    torch.manual_seed(0)
    D = QuadraticD()
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    penalty = losses.r1_penalty(D, x, None)
    expected = (4 * D.a.detach() ** 2 * x**2).sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(penalty, expected, rtol=1e-14, atol=0)
    penalty.backward()
    # d/da mean_n sum(4 a² x_n²) = 8 a mean_n(x_n²); b does not enter (its gradient is 0).
    torch.testing.assert_close(D.a.grad, 8 * D.a.detach() * (x**2).mean(0), rtol=1e-14, atol=0)
    assert D.b.grad is not None and float(D.b.grad) == 0.0


def test_r1_gradient_matches_finite_differences_through_a_conv_d():
    """R1's gradient with respect to D's weights (double backward) vs finite differences, for a
    conv -> softplus -> linear D (softplus: a nonzero second derivative)."""
    torch.manual_seed(1)
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)

    def penalty_of(conv_weight, conv_bias, head_weight, head_bias):
        def D(img, c):
            features = nn.functional.softplus(nn.functional.conv2d(img, conv_weight, conv_bias))
            return nn.functional.linear(features.flatten(1), head_weight, head_bias)

        return losses.r1_penalty(D, x, None)

    weights = (
        torch.randn(1, 2, 2, 2, dtype=torch.float64),
        torch.randn(1, dtype=torch.float64),
        torch.randn(1, 4, dtype=torch.float64),
        torch.randn(1, dtype=torch.float64),
    )
    inputs = tuple(w.requires_grad_(True) for w in weights)
    assert torch.autograd.gradcheck(penalty_of, inputs, eps=1e-6, atol=1e-8)


def test_lazy_r1_term_and_schedule():
    D = QuadraticD()
    G = TinyGenerator()
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    loss = StyleGANLoss(G, D, r1_gamma=5.0, r1_interval=4, style_mix_fn=style_mix)
    term, stats = loss.discriminator_regularization(x, None)
    r1 = losses.r1_penalty(D, x, None)
    torch.testing.assert_close(term, r1 * 5.0 / 2 * 4, rtol=1e-14, atol=0)
    torch.testing.assert_close(stats["penalty/r1"], r1.detach())
    assert [loss.is_regularization_step(s) for s in range(9)] == [s % 4 == 0 for s in range(9)]
    assert not StyleGANLoss(G, D, r1_gamma=0, style_mix_fn=style_mix).is_regularization_step(0)
    assert not StyleGANLoss(G, D, loss="wgan-gp", style_mix_fn=style_mix).is_regularization_step(0)
    lr, betas = losses.lazy_regularization_adam(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.002 * 16 / 17) and betas == (0.0, 0.99 ** (16 / 17))
    assert losses.lazy_regularization_adam(0.002, (0.0, 0.99), 1) == (0.002, (0.0, 0.99))


def _fakes(G, z, generator_seed):
    """What ``StyleGANLoss.generate`` returns, recomputed from the fixtures directly."""
    torch.manual_seed(123)  # the synthesis noise
    return G.synthesis(style_mix(G, z, None, 0.9, torch.Generator().manual_seed(generator_seed)))


def test_generator_and_discriminator_losses_use_the_contract():
    torch.manual_seed(0)
    G, D = TinyGenerator(), TinyDiscriminator()
    loss = StyleGANLoss(G, D, style_mix_fn=style_mix)
    z = torch.randn(5, 4)
    reals = torch.randn(5, 3, 4, 4)

    torch.manual_seed(123)
    g_loss, stats = loss.generator_loss(z, None, torch.Generator().manual_seed(7))
    expected = nn.functional.softplus(-D(_fakes(G, z, 7), None)).mean()
    torch.testing.assert_close(g_loss, expected)
    g_loss.backward()
    assert all(p.grad is not None for p in G.parameters())
    assert set(stats) == {"loss/G", "logits/fake"}

    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    torch.manual_seed(123)
    d_loss, stats = loss.discriminator_loss(reals, None, z, None, torch.Generator().manual_seed(7))
    fake_logits = D(_fakes(G, z, 7).detach(), None)
    expected = (
        nn.functional.softplus(fake_logits).mean() + nn.functional.softplus(-D(reals, None)).mean()
    )
    torch.testing.assert_close(d_loss, expected)
    d_loss.backward()
    assert all(p.grad is None for p in G.parameters())  # D's step does not train G
    assert all(p.grad is not None for p in D.parameters())
    torch.testing.assert_close(stats["logits/real"], D(reals, None).detach().mean())


def test_style_mixing_probability_reaches_the_mixer():
    calls = []

    def spy(G, z, c, prob, generator):
        calls.append((prob, generator))
        return style_mix(G, z, c, prob, generator)

    G, D = TinyGenerator(), TinyDiscriminator()
    generator = torch.Generator()
    StyleGANLoss(G, D, style_mixing_prob=0.25, style_mix_fn=spy).generate(
        torch.randn(2, 4), None, generator
    )
    assert calls == [(0.25, generator)]


def test_wgan_gp_by_hand():
    """With a linear D the gradient norm is |w| everywhere: GP = (|w| - 1)² exactly."""
    torch.manual_seed(0)
    w = torch.randn(3, 4, 4, dtype=torch.float64) * 0.1
    D = LinearD(w)
    G = TinyGenerator().double()
    reals = torch.randn(4, 3, 4, 4, dtype=torch.float64)
    z = torch.randn(4, 4, dtype=torch.float64)
    gp = losses.wgan_gradient_penalty(
        D, reals, reals.flip(0), None, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(gp, (w.norm() - 1) ** 2, rtol=1e-12, atol=0)
    gp_target = losses.wgan_gradient_penalty(D, reals, reals, None, target=2.0)
    torch.testing.assert_close(gp_target, (w.norm() - 2) ** 2 / 4, rtol=1e-12, atol=0)

    loss = StyleGANLoss(
        G, D, loss="wgan-gp", wgan_lambda=10, wgan_epsilon=0.001, style_mix_fn=style_mix
    )
    torch.manual_seed(5)
    d_loss, stats = loss.discriminator_loss(reals, None, z, None, torch.Generator().manual_seed(3))
    torch.manual_seed(5)
    fakes = G.synthesis(style_mix(G, z, None, 0.9, torch.Generator().manual_seed(3)))
    real_logits, fake_logits = D(reals), D(fakes)
    expected = (
        fake_logits.mean()
        - real_logits.mean()
        + 10 * (w.norm() - 1) ** 2
        + 0.001 * real_logits.square().mean()
    )
    torch.testing.assert_close(d_loss, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(stats["penalty/gp"], ((w.norm() - 1) ** 2).detach())
    # d/dw of lambda (|w| - 1)²: 2 lambda (|w| - 1) w / |w|, on top of the linear terms.
    d_loss.backward()
    drift_part = 0.001 * 2 * (real_logits.detach().view(-1, 1, 1, 1) * reals).mean(0)
    linear_part = fakes.detach().mean(0) - reals.mean(0) + drift_part
    gp_part = 20 * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(D.w.grad, linear_part + gp_part, rtol=1e-10, atol=1e-12)

    torch.manual_seed(5)
    g_loss, _ = loss.generator_loss(z, None, torch.Generator().manual_seed(3))
    torch.testing.assert_close(g_loss, -fake_logits.mean().detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss": "hinge"}, "loss must be one of"),
        ({"r1_gamma": -1}, "r1_gamma must be a number >= 0"),
        ({"r1_interval": 0}, "r1_interval must be a positive int"),
        ({"style_mixing_prob": 1.5}, r"style_mixing_prob must be in \[0, 1\]"),
        ({"wgan_target": 0}, "wgan_target must be > 0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StyleGANLoss(TinyGenerator(), TinyDiscriminator(), **kwargs)


def test_from_config_reads_the_loss_options_of_a_training_config():
    from stylegan_fast.train import TrainingConfig

    config = TrainingConfig(
        loss="wgan-gp",
        r1_gamma=3.0,
        r1_interval=4,
        style_mixing_prob=0.5,
        wgan_lambda=7.0,
        wgan_epsilon=0.01,
        wgan_target=2.0,
    )
    G, D = TinyGenerator(), TinyDiscriminator()
    loss = StyleGANLoss.from_config(G, D, config, style_mix)
    assert (loss.G, loss.D, loss._style_mix_fn) == (G, D, style_mix)
    for name in losses.CONFIG_FIELDS:
        assert getattr(loss, name) == getattr(config, name)
