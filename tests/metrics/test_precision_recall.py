"""Improved precision and recall (k-NN manifolds): hand-made feature sets with known answers,
a brute-force oracle, the metric through evaluate() and bad input."""

import itertools
import sys

import numpy as np
import pytest
import torch
from metric_fixtures import make_cnn

from stylegan_fast.metrics import evaluate, knn_radii, manifold_coverage, precision_recall


def _line(*positions):
    """Points on a line in 2-D: ``[N, 2]`` float64 (x = position, y = 0)."""
    return torch.tensor([[float(p), 0.0] for p in positions], dtype=torch.float64)


def _brute_force(real, fake, k=3):
    """The definition, point by point (the test oracle)."""

    def radii(points):
        out = []
        for i, p in enumerate(points):
            others = sorted(float(np.linalg.norm(p - q)) for j, q in enumerate(points) if j != i)
            out.append(others[k - 1])
        return out

    def coverage(manifold, queries):
        r = radii(manifold)
        inside = [any(np.linalg.norm(q - m) <= rm for m, rm in zip(manifold, r)) for q in queries]
        return sum(inside) / len(queries)

    return coverage(real, fake), coverage(fake, real)


def test_identical_sets_have_precision_and_recall_one():
    features = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(features, features.clone()) == (1.0, 1.0)


def test_disjoint_far_sets_have_precision_and_recall_zero():
    g = torch.Generator().manual_seed(1)
    real = torch.randn(40, 8, generator=g)
    fake = torch.randn(30, 8, generator=g) + 1000.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_known_answers_on_a_line():
    real = _line(*range(10))  # k=3 radii: 3 at the ends 0 and 9, 2 inside
    assert knn_radii(real).tolist() == [3, 2, 2, 2, 2, 2, 2, 2, 2, 3]
    # Four fakes on the real points' span, two far away: precision 4/6. The far ones' balls
    # (radius 47.5 and 57.5) cover the whole real line: recall 1.
    fake = _line(0.5, 1.5, 2.5, 3.5, 50, 60)
    assert precision_recall(real, fake) == pytest.approx((4 / 6, 1.0))
    # Four fakes at 0..3: radii 3, 2, 2, 3, so their manifold is [-3, 6]: the reals 0..6 are
    # inside (recall 7/10), and every fake is a real point (precision 1).
    assert precision_recall(real, _line(0, 1, 2, 3)) == pytest.approx((1.0, 0.7))
    # A query exactly on a ball's boundary counts as inside.
    queries = _line(-3, 12, -3.001, 12.001)
    assert manifold_coverage(real, knn_radii(real), queries) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_definition_point_by_point(seed, monkeypatch):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(25, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(20, 3, generator=g, dtype=torch.float64) * 1.5 + 0.5
    expected = _brute_force(real.numpy(), fake.numpy())
    assert precision_recall(real, fake) == pytest.approx(expected)
    # Blocks of rows give the same answer as one block.
    monkeypatch.setattr(sys.modules["stylegan_fast.metrics.precision_recall"], "_BLOCK", 7)
    assert precision_recall(real, fake) == pytest.approx(expected)


def test_numpy_float32_inputs():
    g = np.random.default_rng(0)
    real = g.normal(size=(30, 4)).astype(np.float32)
    precision, recall = precision_recall(real, real[::-1].copy())
    assert (precision, recall) == (1.0, 1.0)


def test_pr_through_evaluate_with_a_real_generator(tmp_path):
    """pr50k3 of a tiny generator against its own images: precision and recall in [0, 1],
    reproducible, and the same value from the cache."""
    from stylegan_fast.models import Generator, preset_configs

    torch.manual_seed(0)
    G = Generator.from_config(preset_configs("tiny", resolution=8)[0]).eval()
    real = torch.rand(24, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    runs = [
        evaluate("pr50k3", G, make_cnn(), real, num=16, cache_dir=tmp_path, data_key="r")
        for _ in range(2)
    ]
    for result in runs:
        assert result["metric"] == "pr50k3" and result["num_gen"] == 16
        assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
        assert result["value"] == result["precision"]
    assert [r["cache_hit"] for r in runs] == [False, True]
    assert (runs[0]["precision"], runs[0]["recall"]) == (runs[1]["precision"], runs[1]["recall"])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: knn_radii(torch.zeros(3, 2)), ValueError, "need more than 3 points"),
        (lambda: knn_radii(torch.zeros(5, 2), k=0), ValueError, "k must be a positive int"),
        (lambda: knn_radii(torch.zeros(5)), ValueError, "features must be [N, D], got shape [5]"),
        (
            lambda: precision_recall(torch.zeros(5, 2), torch.full((5, 2), float("nan"))),
            ValueError,
            "generated_features contain NaN",
        ),
        (
            lambda: manifold_coverage(torch.zeros(5, 2), torch.zeros(5), torch.zeros(3, 4)),
            ValueError,
            "manifold and queries have different dimensions (2 and 4)",
        ),
        (
            lambda: manifold_coverage(torch.zeros(5, 2), torch.zeros(4), torch.zeros(3, 2)),
            ValueError,
            "radii must be [N] = [5]",
        ),
    ],
    ids=itertools.count(),
)
def test_bad_input(call, error, message):
    with pytest.raises(error) as exc:
        call()
    assert message in str(exc.value)
