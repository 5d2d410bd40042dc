"""FID: the Fréchet distance against closed forms and scipy's matrix square root, feature
statistics (direct and streamed), a real ordering test with a random-init CNN on faces, the
statistics cache, bad inputs."""

import os
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from metric_fixtures import blur, make_cnn, sequential_generator

from stylegan_fast.metrics import (
    FeatureNet,
    compute_fid,
    feature_statistics,
    files_fingerprint,
    frechet_distance,
    real_feature_statistics,
)
from stylegan_fast.metrics.statistics import RunningStatistics


def random_spd(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / (rank or d)


def closed_form_commuting(mu1, eig1, mu2, eig2):
    """Covariances Q diag(eig) Q^T with one Q: (sigma1 sigma2)^(1/2) = Q diag(sqrt(eig1
    eig2)) Q^T, so the distance is |mu1 - mu2|^2 + sum (sqrt(eig1) - sqrt(eig2))^2."""
    return float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(eig1) - np.sqrt(eig2)) ** 2).sum())


# --- the Fréchet distance ------------------------------------------------------------------


def test_one_dimensional_gaussians():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    value = frechet_distance(
        np.array([0.5]), np.array([[4.0]]), np.array([-1.0]), np.array([[0.25]])
    )
    assert value == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_diagonal_covariances_match_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(7), rng.standard_normal(7)
    eig1, eig2 = rng.uniform(0.1, 3, 7), rng.uniform(0.1, 3, 7)
    value = frechet_distance(mu1, np.diag(eig1), mu2, np.diag(eig2))
    assert value == pytest.approx(closed_form_commuting(mu1, eig1, mu2, eig2), rel=1e-12)


def test_commuting_covariances_match_the_closed_form():
    rng = np.random.default_rng(1)
    d = 12
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig1, eig2 = rng.uniform(0.05, 2, d), rng.uniform(0.05, 2, d)
    eig2[:3] = 0.0  # a singular covariance is still a covariance
    sigma1, sigma2 = q @ np.diag(eig1) @ q.T, q @ np.diag(eig2) @ q.T
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    value = frechet_distance(mu1, sigma1, mu2, sigma2)
    # The zero eigenvalues come out as rounding (~eps * scale); their square roots add up to
    # sqrt(eps) * scale each: the only loss, and inherent to the square root at 0.
    slack = d * np.sqrt(np.finfo(float).eps) * max(eig1.max(), eig2.max())
    expected = closed_form_commuting(mu1, eig1, mu2, eig2)
    assert value == pytest.approx(expected, rel=1e-12, abs=slack)


def test_general_covariances_match_scipy_sqrtm():
    # A different algorithm (Schur-based sqrtm) for the general, non-commuting case.
    rng = np.random.default_rng(2)
    d = 20
    sigma1, sigma2 = random_spd(rng, d), random_spd(rng, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2) - 2 * np.trace(root).real
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("rank", [None, 5], ids=["full_rank", "rank_deficient"])
def test_identical_statistics_give_zero(rank):
    rng = np.random.default_rng(3)
    d = 16
    sigma, mu = random_spd(rng, d, rank), rng.standard_normal(d)
    value = frechet_distance(mu, sigma, mu, sigma)
    assert 0.0 <= value < 1e-9 * np.trace(sigma)


def test_symmetric_and_non_negative():
    rng = np.random.default_rng(4)
    for trial in range(5):
        d = 3 + trial * 4
        rank = max(1, d - trial)
        a = (rng.standard_normal(d), random_spd(rng, d, rank))
        b = (rng.standard_normal(d) * 0.1, random_spd(rng, d))
        ab, ba = frechet_distance(*a, *b), frechet_distance(*b, *a)
        # Full rank: the two orders agree to rounding. Rank-deficient: sigma1 @ sigma2's zero
        # eigenvalues come out as rounding (~eps * scale^2) that differs between the orders,
        # and their square roots add up to sqrt(eps) * scale each, the loss the commuting test
        # above allows (scipy 1.17.1, numpy 2.4.6: 3.5e-8 apart at d = 11, rank 9, scale 4.2,
        # slack 1.2e-7; the strict rel=1e-9 alone failed there).
        scale = max(np.linalg.eigvalsh(a[1]).max(), np.linalg.eigvalsh(b[1]).max())
        slack = (d - rank) * np.sqrt(np.finfo(float).eps) * scale
        assert ab > 0 and ab == pytest.approx(ba, rel=1e-9, abs=slack)


def test_accepts_tensors():
    mu, sigma = torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    assert frechet_distance(mu, sigma, mu + 1, 4 * sigma) == pytest.approx(3 + 3 * 1.0)


def test_bad_statistics_raise():
    mu, sigma = np.zeros(3), np.eye(3)
    with pytest.raises(ValueError, match="different feature dimensions"):
        frechet_distance(mu, sigma, np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"sigma2 must be \[D, D\]"):
        frechet_distance(mu, sigma, mu, np.eye(4))
    with pytest.raises(ValueError, match=r"mu1 must be \[D\]"):
        frechet_distance(np.zeros((3, 1)), sigma, mu, sigma)
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance(mu, np.triu(np.ones((3, 3))), mu, sigma)
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(mu, np.diag([1.0, -1.0, 1.0]), mu, sigma)
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(mu, np.full((3, 3), np.nan), mu, sigma)


# --- feature statistics --------------------------------------------------------------------


def test_feature_statistics_match_numpy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 6)) * rng.uniform(0.5, 2, 6) + 3
    mu, sigma = feature_statistics(torch.from_numpy(x).float())
    xf = torch.from_numpy(x).float().double().numpy()
    np.testing.assert_allclose(mu, xf.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(xf, rowvar=False, ddof=1), rtol=1e-10, atol=1e-12)


def test_streamed_statistics_match_all_at_once_with_a_large_mean():
    # A mean 1e4 times the spread: the raw-moment formula would lose ~8 digits here.
    rng = np.random.default_rng(6)
    x = rng.standard_normal((101, 5)) + 1e4
    running = RunningStatistics(keep_features=True)
    for chunk in np.split(x, [1, 7, 50, 51]):
        running.update(chunk)
    mu, sigma = feature_statistics(x)
    assert running.num == 101
    np.testing.assert_allclose(running.mean, mu, rtol=1e-14)
    np.testing.assert_allclose(running.covariance, sigma, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(running.features, x.astype(np.float32))


def test_too_few_samples_for_a_covariance_raise():
    with pytest.raises(ValueError, match="at least 2 feature vectors, got 1"):
        feature_statistics(np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        feature_statistics(np.ones(4))
    running = RunningStatistics()
    running.update(np.ones((1, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        _ = running.covariance
    with pytest.raises(ValueError, match="have 3 dimensions, earlier batches had 4"):
        running.update(np.ones((2, 3)))


# --- FID of image sets ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fid_orders_good_and_corrupted_generators(faces, seed):
    # Reals: 50 faces. "Generators": 50 other faces (good), the same blurred, the same with
    # noise, and background patches (LFW subset's non-faces). A random-init CNN's features
    # must rank the held-out faces first.
    net = FeatureNet(make_cnn(seed, features=16))
    real, held_out = faces[:50], faces[50:100]
    noisy = (
        held_out + 0.3 * torch.randn(held_out.shape, generator=torch.Generator().manual_seed(seed))
    ).clamp(-1, 1)
    fid = {
        name: compute_fid(sequential_generator(images), real, net, num_gen=50)
        for name, images in [
            ("good", held_out),
            ("blurred", blur(held_out)),
            ("noisy", noisy),
            ("non_faces", faces[100:150]),
        ]
    }
    assert fid["good"] < fid["blurred"] and fid["good"] < fid["noisy"], fid
    assert fid["good"] < fid["non_faces"], fid


def test_compute_fid_equals_the_direct_computation(faces):
    # The batched, preprocessed pipeline vs features taken in one call and numpy statistics.
    cnn = make_cnn(3, features=8)
    net = FeatureNet(cnn, batch_size=7)
    real, fake = faces[:30], blur(faces[60:90])
    with torch.no_grad():
        fr, ff = cnn(real).double().numpy(), cnn(fake).double().numpy()
    expected = frechet_distance(
        fr.mean(0), np.cov(fr, rowvar=False), ff.mean(0), np.cov(ff, rowvar=False)
    )
    value = compute_fid(sequential_generator(fake), real, net, num_gen=30, batch_size=11)
    assert value == pytest.approx(expected, rel=1e-5)


def test_real_images_from_a_dataset_and_a_loader(faces):
    # A map-style dataset of (image, label) items, a DataLoader, a list of batches and uint8
    # images give the statistics of the float tensor.
    net = FeatureNet(make_cnn(0, features=4))
    dataset = torch.utils.data.TensorDataset(faces[:20], torch.arange(20))
    loader = torch.utils.data.DataLoader(dataset, batch_size=6)
    reference = real_feature_statistics(faces[:20], net)
    batches = [faces[:6], faces[6:20], faces[20:30]]
    assert real_feature_statistics(batches, net).num == 30
    for data in (dataset, loader, batches, (faces[:20] + 1) * 127.5):
        if data.__class__ is torch.Tensor:
            data = data.round().to(torch.uint8)
            expected = real_feature_statistics(
                torch.round((faces[:20] + 1) * 127.5) / 127.5 - 1, net
            )
        else:
            expected = reference
        stats = real_feature_statistics(data, net, num=20)
        assert stats.num == 20
        np.testing.assert_allclose(stats.mu, expected.mu, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(stats.sigma, expected.sigma, rtol=1e-5, atol=1e-9)


def test_bad_image_sets_raise(faces):
    net = FeatureNet(make_cnn(0, features=4))
    with pytest.raises(ValueError, match="generated images are 12x12, the real ones 25x25"):
        compute_fid(lambda n: torch.zeros(n, 3, 12, 12), faces[:10], net, num_gen=4)
    with pytest.raises(ValueError, match=r"generator_fn\(4\) must return 4 images, got 3"):
        compute_fid(lambda n: torch.zeros(3, 3, 25, 25), faces[:10], net, num_gen=4)
    with pytest.raises(ValueError, match="at least 2 images, got 1"):
        compute_fid(sequential_generator(faces), faces[:1], net, num_gen=4)
    with pytest.raises(ValueError, match="num_gen must be an int >= 2"):
        compute_fid(sequential_generator(faces), faces[:10], net, num_gen=1)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        compute_fid(sequential_generator(faces), faces[:10, 0], net, num_gen=4)
    with pytest.raises(TypeError, match="one-shot"):
        compute_fid(sequential_generator(faces), iter([faces[:10]]), net, num_gen=4)
    with pytest.raises(ValueError, match="real images are 25x25 but the generator makes 32x32"):
        real_feature_statistics(faces[:10], net, image_size=32)


# --- the statistics cache ------------------------------------------------------------------


class CountingNet(torch.nn.Module):
    """A feature net that counts the images it sees."""

    def __init__(self, seed=0):
        super().__init__()
        self.cnn = make_cnn(seed, features=4)
        self.seen = 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.cnn(x)


def test_cache_hits_and_invalidates(faces, tmp_path):
    net_module = CountingNet()
    net = FeatureNet(net_module)
    data = faces[:20].clone()
    first = real_feature_statistics(data, net, num=20, cache_dir=tmp_path)
    assert not first.cache_hit and net_module.seen == 20 and os.path.exists(first.cache_path)

    again = real_feature_statistics(data, net, num=20, cache_dir=tmp_path)
    assert again.cache_hit and net_module.seen == 20  # no image went through the network
    np.testing.assert_array_equal(again.mu, first.mu)
    np.testing.assert_array_equal(again.sigma, first.sigma)

    # Each part of the key invalidates: the images, the image count, the network's weights,
    # its preprocessing, and whether features are kept.
    data[3, 0, 5, 5] += 0.01
    assert not real_feature_statistics(data, net, num=20, cache_dir=tmp_path).cache_hit
    assert not real_feature_statistics(data, net, num=19, cache_dir=tmp_path).cache_hit
    other_weights = FeatureNet(CountingNet(seed=1))
    assert not real_feature_statistics(data, other_weights, num=20, cache_dir=tmp_path).cache_hit
    rescaled = FeatureNet(net_module, preprocessing="pytorch-fid")
    assert not real_feature_statistics(data, rescaled, num=20, cache_dir=tmp_path).cache_hit
    kept = real_feature_statistics(data, net, num=20, keep_features=True, cache_dir=tmp_path)
    assert not kept.cache_hit and kept.features.shape == (20, 4)
    kept_again = real_feature_statistics(data, net, num=20, keep_features=True, cache_dir=tmp_path)
    assert kept_again.cache_hit
    np.testing.assert_array_equal(kept_again.features, kept.features)
    assert len([f for f in os.listdir(tmp_path) if f.endswith(".npz")]) == 6
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_cache_uses_data_key_or_fingerprint_without_reading_images(faces, tmp_path):
    class FileDataset(torch.utils.data.Dataset):
        """A dataset that knows a fingerprint of its files and counts item reads."""

        def __init__(self, images, version):
            self.images, self.version, self.reads = images, version, 0

        def __len__(self):
            return len(self.images)

        def __getitem__(self, i):
            self.reads += 1
            return self.images[i]

        def fingerprint(self):
            return f"files-v{self.version}"

    net = FeatureNet(make_cnn(0, features=4))
    dataset = FileDataset(faces[:12], version=1)
    real_feature_statistics(dataset, net, cache_dir=tmp_path)
    dataset.reads = 0
    assert real_feature_statistics(dataset, net, cache_dir=tmp_path).cache_hit
    assert dataset.reads == 1  # the first image only, for its resolution
    assert not real_feature_statistics(
        FileDataset(faces[:12], 2), net, cache_dir=tmp_path
    ).cache_hit

    # data_key: the caller names the data, nothing is hashed.
    stats = real_feature_statistics(faces[:12], net, cache_dir=tmp_path, data_key="lfw-v1")
    assert real_feature_statistics(
        faces[20:32], net, cache_dir=tmp_path, data_key="lfw-v1"
    ).cache_hit
    assert not stats.cache_hit


def test_a_corrupt_or_foreign_cache_file_is_recomputed(faces, tmp_path):
    net = FeatureNet(make_cnn(0, features=4))
    first = real_feature_statistics(faces[:10], net, cache_dir=tmp_path)
    with open(first.cache_path, "wb") as f:
        f.write(b"not an npz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = real_feature_statistics(faces[:10], net, cache_dir=tmp_path)
    assert not again.cache_hit and any("unreadable" in str(w.message) for w in caught)
    np.testing.assert_allclose(again.mu, first.mu)
    # A file with another key under this name (e.g. copied by hand) is not trusted either.
    other = real_feature_statistics(faces[10:20], net, cache_dir=tmp_path)
    os.replace(other.cache_path, first.cache_path)
    assert not real_feature_statistics(faces[:10], net, cache_dir=tmp_path).cache_hit


def test_files_fingerprint(tmp_path):
    # Relative paths and contents: stable under reordering and moving the folder, changed by
    # an edit or a rename.
    def write(root, name, content):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    a, b = tmp_path / "a", tmp_path / "b"
    files_a = [write(a, "x.png", b"one"), write(a, "sub/y.png", b"two")]
    files_b = [write(b, "sub/y.png", b"two"), write(b, "x.png", b"one")]
    print_a = files_fingerprint(files_a, root=a)
    assert print_a == files_fingerprint(files_b, root=b)
    write(b, "x.png", b"One")
    assert files_fingerprint(files_b, root=b) != print_a
    write(b, "x.png", b"one")
    os.rename(b / "x.png", b / "z.png")
    assert files_fingerprint([b / "sub/y.png", b / "z.png"], root=b) != print_a


def test_an_entry_with_features_serves_a_request_without(faces, tmp_path):
    """KID's (or PR's) entry holds FID's statistics too: no second pass, and the path of the
    entry that served is reported; the other way round does not hold (no features)."""
    net_module = CountingNet()
    net = FeatureNet(net_module)
    data = faces[:12].clone()
    kept = real_feature_statistics(data, net, keep_features=True, cache_dir=tmp_path)
    plain = real_feature_statistics(data, net, cache_dir=tmp_path)
    assert plain.cache_hit and plain.cache_path == kept.cache_path and net_module.seen == 12
    assert plain.features is None
    np.testing.assert_array_equal(plain.sigma, kept.sigma)
    other = tmp_path / "other"
    real_feature_statistics(data, net, cache_dir=other)
    assert not real_feature_statistics(data, net, keep_features=True, cache_dir=other).cache_hit
