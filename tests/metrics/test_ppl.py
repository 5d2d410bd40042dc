"""PPL: per-path samples of a linear generator vs their closed forms in W and Z, epsilon
scaling, crop and down-sampling, the outlier filter, the sampling of t, the full estimate vs
its expectation, the contract calls, bad inputs."""

import math

import numpy as np
import pytest
import torch
from metric_fixtures import LinearGenerator

from stylegan_fast.metrics import path_distances, perceptual_path_length
from stylegan_fast.metrics.ppl import EPSILON, crop_images, filter_outliers, slerp

F64 = torch.float64


def squared_l2(a, b):
    return (a - b).square().flatten(1).sum(1)


def l2(a, b):
    return (a - b).flatten(1).norm(dim=1)


def paths(n, z_dim, seed):
    g = torch.Generator().manual_seed(seed)
    z0, z1 = (
        torch.randn(n, z_dim, generator=g, dtype=F64),
        torch.randn(n, z_dim, generator=g, dtype=F64),
    )
    return z0, z1, torch.rand(n, generator=g, dtype=F64)


def sin_slerp(a, b, t):
    """Textbook slerp of the directions: (sin((1 - t) theta) a + sin(t theta) b) / sin(theta)."""
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    theta = torch.acos((a * b).sum(1, keepdim=True))
    t = t.unsqueeze(1)
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)


def test_slerp_matches_the_sine_formula():
    z0, z1, t = paths(6, 5, seed=0)
    torch.testing.assert_close(slerp(z0, z1, t), sin_slerp(z0, z1, t), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        slerp(z0, z1, torch.zeros(6, dtype=F64)), z0 / z0.norm(dim=1, keepdim=True)
    )
    torch.testing.assert_close(
        slerp(z0, z1, torch.ones(6, dtype=F64)), z1 / z1.norm(dim=1, keepdim=True)
    )


def test_w_paths_of_a_linear_generator():
    # w(t) = w0 + t (w1 - w0) on both layers, image A w: the step's image difference is
    # eps A (w1 - w0), so d / eps^2 = |A (z1 - z0)|^2 for every t and eps.
    G = LinearGenerator()
    z0, z1, t = paths(8, G.z_dim, seed=1)
    samples = path_distances(G, z0, z1, t, squared_l2, space="w", crop=None)
    expected = ((z1 - z0) @ G.A.detach().T).square().sum(1)
    torch.testing.assert_close(samples, expected, rtol=1e-8, atol=0)


def test_z_paths_of_a_linear_generator():
    # In Z the step is the chord between two points of the great circle through the
    # normalised endpoints; as eps -> 0, d / eps^2 -> theta^2 |A u(t)|^2 (u: unit tangent).
    G = LinearGenerator()
    z0, z1, t = paths(8, G.z_dim, seed=2)
    samples = path_distances(G, z0, z1, t, squared_l2, space="z", crop=None)
    A = G.A.detach()
    chord = sin_slerp(z0, z1, t + EPSILON) - sin_slerp(z0, z1, t)
    torch.testing.assert_close(
        samples, (chord @ A.T).square().sum(1) / EPSILON**2, rtol=1e-7, atol=0
    )

    a, b = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    theta = torch.acos((a * b).sum(1, keepdim=True))
    position = sin_slerp(z0, z1, t)
    tangent = (b - (a * b).sum(1, keepdim=True) * a) / torch.sin(theta)  # unit, orthogonal to a
    tangent = -torch.sin(t.unsqueeze(1) * theta) * a + torch.cos(t.unsqueeze(1) * theta) * tangent
    limit = (theta * tangent @ A.T).square().sum(1)
    torch.testing.assert_close(samples, limit, rtol=10 * EPSILON, atol=0)
    assert position.norm(dim=1).sub(1).abs().max() < 1e-12
    # Z and W measure different paths.
    w_samples = path_distances(G, z0, z1, t, squared_l2, space="w", crop=None)
    assert not torch.allclose(samples, w_samples, rtol=0.1)


def test_epsilon_scaling():
    # The division by eps^2 suits a squared distance (LPIPS-like): the samples do not depend
    # on eps. A plain norm scales with eps, so its samples go as 1 / eps.
    G = LinearGenerator()
    z0, z1, t = paths(5, G.z_dim, seed=3)
    small = path_distances(G, z0, z1, t, squared_l2, epsilon=1e-4, crop=None)
    large = path_distances(G, z0, z1, t, squared_l2, epsilon=4e-4, crop=None)
    torch.testing.assert_close(small, large, rtol=1e-8, atol=0)
    small = path_distances(G, z0, z1, t, l2, epsilon=1e-4, crop=None)
    large = path_distances(G, z0, z1, t, l2, epsilon=4e-4, crop=None)
    torch.testing.assert_close(small, 4 * large, rtol=1e-8, atol=0)
    # A non-linear generator converges as eps shrinks.
    Gt = LinearGenerator(squash=True)
    values = [
        path_distances(Gt, z0, z1, t, squared_l2, epsilon=e, crop=None) for e in (1e-2, 1e-3, 1e-4)
    ]
    assert (values[1] - values[2]).abs().max() < 0.2 * (values[0] - values[2]).abs().max()


def test_crop_box():
    x = torch.arange(2 * 3 * 16 * 16, dtype=F64).view(2, 3, 16, 16)
    torch.testing.assert_close(crop_images(x, "paper"), x[:, :, 6:14, 4:12])
    torch.testing.assert_close(crop_images(x, (0.0, 0.5, 0.25, 1.0)), x[:, :, 0:8, 4:16])
    assert crop_images(x, None) is x


def test_crop_and_downsampling_enter_the_distance():
    # Only the cropped pixels count: the closed form with A's rows for the crop box, then
    # with 2x2 blocks averaged when the crop is larger than max_distance_resolution.
    G = LinearGenerator(resolution=16)
    z0, z1, t = paths(6, G.z_dim, seed=4)
    A = G.A.detach().view(3, 16, 16, G.z_dim)
    delta = z1 - z0
    cropped = A[:, 6:14, 4:12]
    expected = (delta @ cropped.reshape(-1, G.z_dim).T).square().sum(1)
    samples = path_distances(G, z0, z1, t, squared_l2, crop="paper")
    torch.testing.assert_close(samples, expected, rtol=1e-8, atol=0)

    pooled = cropped.reshape(3, 4, 2, 4, 2, G.z_dim).mean(dim=(2, 4))
    expected = (delta @ pooled.reshape(-1, G.z_dim).T).square().sum(1)
    samples = path_distances(G, z0, z1, t, squared_l2, crop="paper", max_distance_resolution=4)
    torch.testing.assert_close(samples, expected, rtol=1e-8, atol=0)


def test_distance_input_range():
    # Images go to the distance network mapped from [-1, 1] onto its range: x 127.5 here.
    G = LinearGenerator()
    z0, z1, t = paths(4, G.z_dim, seed=5)
    base = path_distances(G, z0, z1, t, squared_l2, crop=None)
    scaled = path_distances(G, z0, z1, t, squared_l2, crop=None, distance_input_range=(0, 255))
    torch.testing.assert_close(scaled, base * 127.5**2, rtol=1e-8, atol=0)


def test_filter_keeps_the_1st_to_99th_percentile():
    rng = np.random.default_rng(6)
    samples = np.concatenate([rng.exponential(size=997), [1e6, 2e6, -5.0], np.full(10, 0.5)])
    ordered = np.sort(samples)
    n = len(samples)
    lo, hi = ordered[math.floor(0.01 * (n - 1))], ordered[math.ceil(0.99 * (n - 1))]
    expected = samples[(samples >= lo) & (samples <= hi)]
    np.testing.assert_array_equal(filter_outliers(samples), expected)
    assert 1e6 not in filter_outliers(samples) and -5.0 not in filter_outliers(samples)


def test_ppl_estimate_of_a_linear_generator():
    # W, linear G, squared distance: samples |A delta|^2 with delta ~ N(0, 2 I), mean
    # 2 |A|_F^2, variance 8 |A^T A|_F^2. The estimate is the mean of the filtered samples.
    G = LinearGenerator()
    n = 3000
    result = perceptual_path_length(
        G, squared_l2, num_samples=n, space="w", crop=None, batch_size=1000, seed=1
    )
    assert result.samples.shape == (n,)
    kept = filter_outliers(result.samples)
    assert result.value == pytest.approx(kept.mean(), rel=1e-12)
    assert len(kept) < n
    A = G.A.detach().numpy()
    mean = 2 * (A**2).sum()
    std = math.sqrt(8 * ((A.T @ A) ** 2).sum())
    assert abs(result.samples.mean() - mean) < 5 * std / math.sqrt(n)
    # Reproducible from the seed; another seed draws other paths.
    again = perceptual_path_length(
        G, squared_l2, num_samples=n, space="w", crop=None, batch_size=700, seed=1
    )
    np.testing.assert_allclose(again.samples, result.samples, rtol=1e-9)
    other = perceptual_path_length(G, squared_l2, num_samples=10, space="w", crop=None, seed=2)
    assert not np.allclose(other.samples, result.samples[:10])


@pytest.mark.parametrize("sampling", ["full", "end"])
def test_sampling_of_t(sampling):
    # Recover each path's t from the recorded calls: mapping gets [z0; z1] (= [w0; w1] here),
    # synthesis gets [w(t); w(t + eps)].
    G = LinearGenerator()
    n = 200
    perceptual_path_length(G, squared_l2, num_samples=n, space="w", sampling=sampling, batch_size=n)
    (_, z01, _, _), (_, w_ends, noise_mode) = G.calls
    assert noise_mode == "const"
    w0, w1 = z01[:n], z01[n:]
    direction = w1 - w0
    t0 = ((w_ends[:n, 0] - w0) * direction).sum(1) / direction.square().sum(1)
    t1 = ((w_ends[n:, 0] - w0) * direction).sum(1) / direction.square().sum(1)
    torch.testing.assert_close(t1 - t0, torch.full_like(t0, EPSILON), rtol=1e-6, atol=1e-12)
    if sampling == "full":
        assert 0 <= t0.min() and t0.max() <= 1 and 0.3 < t0.mean() < 0.7 and t0.std() > 0.2
    else:
        at_start = t0.abs() < 1e-9
        at_end = (t0 - (1 - EPSILON)).abs() < 1e-9
        assert bool((at_start | at_end).all()) and 60 < int(at_start.sum()) < 140


def test_conditional_generator_gets_one_label_per_path_and_truncation():
    G = LinearGenerator(c_dim=3)
    perceptual_path_length(
        G, squared_l2, num_samples=40, space="z", batch_size=40, truncation_psi=0.5
    )
    (_, _, c, psi), _ = G.calls
    assert psi == 0.5
    torch.testing.assert_close(c[:40], c[40:])
    assert bool((c.sum(1) == 1).all()) and len(set(c.argmax(1).tolist())) == 3


def test_bad_inputs_raise():
    G = LinearGenerator()
    z0, z1, t = paths(3, G.z_dim, seed=7)
    with pytest.raises(ValueError, match="space must be one of"):
        path_distances(G, z0, z1, t, squared_l2, space="s")
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        path_distances(G, z0, z1, t, squared_l2, epsilon=0)
    with pytest.raises(ValueError, match="crop must be None, 'paper'"):
        path_distances(G, z0, z1, t, squared_l2, crop=(0.5, 0.25, 0, 1))
    with pytest.raises(ValueError, match=r"z0 and z1 must both be \[N, z_dim\] = \[N, 6\]"):
        path_distances(G, z0[:, :4], z1[:, :4], t, squared_l2)
    with pytest.raises(ValueError, match=r"t must be \[N\] = \[3\]"):
        path_distances(G, z0, z1, t[:2], squared_l2)
    with pytest.raises(ValueError, match=r"distance_fn must return a tensor \[N\] = \[3\]"):
        path_distances(G, z0, z1, t, lambda a, b: (a - b).square())
    with pytest.raises(TypeError, match="lacks mapping, synthesis"):
        perceptual_path_length(torch.nn.Linear(2, 2), squared_l2, num_samples=4)
    with pytest.raises(ValueError, match="sampling must be one of"):
        perceptual_path_length(G, squared_l2, num_samples=4, sampling="middle")
    with pytest.raises(ValueError, match="num_samples must be a positive int"):
        perceptual_path_length(G, squared_l2, num_samples=0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        perceptual_path_length(
            G, lambda a, b: torch.full([a.shape[0]], float("nan")), num_samples=4
        )
