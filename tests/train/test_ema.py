"""Generator EMA: the half-life in images, ramp-up, and the update itself."""

import copy

import pytest
import torch
from train_fixtures import TinyGenerator

from stylegan_fast.train.ema import GeneratorEMA, ema_beta, update_ema


def test_beta_halves_the_old_weight_after_half_life_images():
    for batch, half_life in [(32, 10_000), (4, 500), (7, 3.5)]:
        beta = ema_beta(batch, half_life)
        # after half_life / batch steps the old value's weight is exactly one half
        assert beta ** (half_life / batch) == pytest.approx(0.5, rel=1e-12)
    assert ema_beta(32, 10_000) == 0.5 ** (32 / 10_000)
    # The same images give the same decay whatever the batch size.
    assert ema_beta(8, 1000) ** 4 == pytest.approx(ema_beta(32, 1000), rel=1e-12)


def test_rampup_shortens_the_half_life_early_in_training():
    assert ema_beta(32, 10_000, images_seen=0, rampup=0.05) == 0.0  # plain copy at the start
    assert ema_beta(32, 10_000, images_seen=1000, rampup=0.05) == 0.5 ** (32 / 50)
    assert ema_beta(32, 10_000, images_seen=10**6, rampup=0.05) == ema_beta(32, 10_000)
    with pytest.raises(ValueError, match="images_seen"):
        ema_beta(32, 10_000, rampup=0.05)


def test_update_matches_the_formula_and_copies_buffers():
    torch.manual_seed(0)
    G, G_ema = TinyGenerator(), TinyGenerator()
    G.w_avg.normal_()
    G.lod.fill_(1.5)
    before = {k: v.double().clone() for k, v in G_ema.state_dict().items()}
    update_ema(G_ema, G, 0.9)
    for name, value in G.named_parameters():
        expected = value.double() + 0.9 * (before[name] - value.double())
        torch.testing.assert_close(
            dict(G_ema.named_parameters())[name].double(), expected, rtol=0, atol=1e-7
        )
    assert torch.equal(G_ema.w_avg, G.w_avg) and float(G_ema.lod) == 1.5
    update_ema(G_ema, G, 0.0)  # beta 0: an exact copy
    for name, value in G.state_dict().items():
        assert torch.equal(G_ema.state_dict()[name], value)


def test_schedule_reaches_one_half_at_the_half_life():
    """An average starting at 0 tracking a model held at 1 reaches 1/2 after half-life images."""
    model = torch.nn.Linear(1, 1, bias=False)
    average = copy.deepcopy(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
        average.weight.zero_()
    ema = GeneratorEMA(half_life_images=640)
    images = 0
    while images < 640:
        ema.update(average, model, batch_size=32, images_seen=images)
        images += 32
    assert float(average.weight.detach()) == pytest.approx(0.5, abs=1e-6)
    assert "half_life_images=640" in repr(ema)


def test_bad_arguments():
    with pytest.raises(ValueError, match="different parameters"):
        update_ema(TinyGenerator(), torch.nn.Linear(1, 1), 0.5)
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\]"):
        update_ema(TinyGenerator(), TinyGenerator(), 1.5)
    for kwargs, message in [
        ({"half_life_images": 0}, "half_life_images must be a positive"),
        ({"half_life_images": float("inf")}, "must be finite"),
        ({"rampup": -1}, "rampup must be a positive"),
    ]:
        with pytest.raises(ValueError, match=message):
            GeneratorEMA(**kwargs)
    with pytest.raises(ValueError, match="batch_size"):
        ema_beta(0, 100)
