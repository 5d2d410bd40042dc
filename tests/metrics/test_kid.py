"""KID: the unbiased MMD² vs a naive double loop, ~0 for one distribution, positive and
ordered for shifted ones, the subset average, an image-level run, bad inputs."""

import itertools

import numpy as np
import pytest
import torch
from metric_fixtures import blur, make_cnn, sequential_generator

from stylegan_fast.metrics import (
    FeatureNet,
    compute_kid,
    kernel_inception_distance,
    polynomial_mmd2,
)


def naive_mmd2(x, y):
    """The unbiased estimator term by term, with the kernel written out per pair."""
    m, d = len(x), len(x[0])

    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b)) / d + 1) ** 3

    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return within / (m * (m - 1)) - 2 * across / m**2


def test_mmd2_matches_the_naive_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 3)) + 0.4
    assert polynomial_mmd2(x, y) == pytest.approx(naive_mmd2(x.tolist(), y.tolist()), rel=1e-12)


def test_one_subset_of_everything_is_the_mmd2_of_the_sets():
    # MMD² does not depend on the order of the samples, so a subset that is a permutation of
    # all of them gives the full-set value, with no spread.
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((9, 4)) * 1.5
    kid, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=9)
    assert kid == pytest.approx(naive_mmd2(x.tolist(), y.tolist()), rel=1e-10)
    assert std == 0.0


def test_same_distribution_is_near_zero_and_shifts_are_ordered():
    rng = np.random.default_rng(2)
    d, n = 16, 600
    real = rng.standard_normal((n, d))
    same = rng.standard_normal((n, d))
    results = {
        shift: kernel_inception_distance(real, same + shift, num_subsets=10, subset_size=150)
        for shift in (0.0, 0.25, 0.5, 1.0)
    }
    kid0, std0 = results[0.0]
    assert abs(kid0) < 3 * std0 + 1e-3  # unbiased: centred on 0, can be slightly negative
    values = [results[s][0] for s in (0.25, 0.5, 1.0)]
    assert values[0] > 3 * std0 + abs(kid0)
    assert values[0] < values[1] < values[2]


def test_subsets_are_seeded():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((50, 5)), rng.standard_normal((60, 5))
    a = kernel_inception_distance(x, y, num_subsets=4, subset_size=10, seed=7)
    assert a == kernel_inception_distance(x, y, num_subsets=4, subset_size=10, seed=7)
    assert a != kernel_inception_distance(x, y, num_subsets=4, subset_size=10, seed=8)


def test_compute_kid_orders_good_and_blurred_images(faces):
    net = FeatureNet(make_cnn(0, features=16))
    real, held_out = faces[:50], faces[50:100]
    good, _ = compute_kid(sequential_generator(held_out), real, net, num_gen=50, num_subsets=10)
    blurred, _ = compute_kid(
        sequential_generator(blur(held_out)), real, net, num_gen=50, num_subsets=10
    )
    assert good < blurred


def test_bad_inputs_raise():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="different dimensions"):
        kernel_inception_distance(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 real and 2 generated"):
        kernel_inception_distance(x, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="num_subsets must be a positive int"):
        kernel_inception_distance(x, x, num_subsets=0)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        kernel_inception_distance(np.zeros(5), x)
    with pytest.raises(ValueError, match="NaN"):
        kernel_inception_distance(x, np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match=r"both be \[m, D\] with m >= 2"):
        polynomial_mmd2(x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="at least 2 images"):
        compute_kid(
            lambda n: torch.zeros(n, 3, 4, 4), torch.zeros(1, 3, 4, 4), lambda x: x.flatten(1), 4
        )
