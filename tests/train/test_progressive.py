"""Progressive growing: the lod schedule, learning rate per resolution, faded reals."""

import pytest
import torch

from stylegan_fast.train.progressive import ProgressiveSchedule, fade_reals, learning_rate


def test_schedule_trains_then_fades_each_level():
    schedule = ProgressiveSchedule(32, initial_resolution=8, training_kimg=1, transition_kimg=1)
    assert schedule.max_lod == 3
    expected = {
        0: 2.0,
        500: 2.0,
        1000: 2.0,
        1500: 1.5,
        1750: 1.25,
        2000: 1.0,
        2999: 1.0,
        3500: 0.5,
        4000: 0.0,
        10**6: 0.0,
    }
    for images, lod in expected.items():
        assert schedule.lod(images) == pytest.approx(lod, abs=1e-12), images
    assert [schedule.resolution_at(lod) for lod in (2.0, 1.5, 1.0, 0.25, 0.0)] == [
        8,
        16,
        16,
        32,
        32,
    ]
    jump = ProgressiveSchedule(32, initial_resolution=8, training_kimg=1, transition_kimg=0)
    assert [jump.lod(i) for i in (999, 1000, 1999, 2000, 5000)] == [2.0, 1.0, 1.0, 0.0, 0.0]
    assert ProgressiveSchedule(32, initial_resolution=32).lod(0) == 0.0
    assert ProgressiveSchedule(1024).lod(0) == 7.0  # StyleGAN: from 8² to 1024²


def test_learning_rate_per_resolution():
    schedule = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
    assert learning_rate(0.001, schedule, 64) == 0.001
    assert learning_rate(0.001, schedule, 256) == 0.002
    assert learning_rate(0.001, None, 256) == 0.001


def _block_mean(x, k):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // k, k, w // k, k).mean(dim=(3, 5))


def _nearest_up(x, k):
    return x.repeat_interleave(k, 2).repeat_interleave(k, 3)


def test_fade_reals_from_first_principles():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    assert fade_reals(x, 0.0) is x
    torch.testing.assert_close(fade_reals(x, 1.0), _nearest_up(_block_mean(x, 2), 2))
    torch.testing.assert_close(fade_reals(x, 2.0), _nearest_up(_block_mean(x, 4), 4))
    torch.testing.assert_close(
        fade_reals(x, 0.5), torch.lerp(x, _nearest_up(_block_mean(x, 2), 2), 0.5)
    )
    level1 = _block_mean(x, 2)
    coarser = _nearest_up(_block_mean(level1, 2), 2)
    torch.testing.assert_close(
        fade_reals(x, 1.25), _nearest_up(torch.lerp(level1, coarser, 0.25), 2)
    )
    # Continuity across a level boundary.
    torch.testing.assert_close(fade_reals(x, 1.0 - 1e-9), fade_reals(x, 1.0), atol=1e-8, rtol=0)
    with pytest.raises(ValueError, match="lod must be >= 0"):
        fade_reals(x, -1)
    with pytest.raises(ValueError, match="cannot be downsampled"):
        fade_reals(torch.zeros(1, 3, 6, 6), 1.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"resolution": 48}, "power of two >= 4"),
        ({"resolution": 32, "initial_resolution": 64}, r"power of two in \[4, 32\]"),
        ({"resolution": 32, "training_kimg": -1}, ">= 0"),
        ({"resolution": 32, "training_kimg": 0, "transition_kimg": 0}, "must be > 0 to grow"),
    ],
)
def test_bad_schedules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProgressiveSchedule(**kwargs)
