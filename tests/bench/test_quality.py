"""The training-quality measurement's pieces (stylegan_fast.bench.quality): the digits data
set and its zip, the classifier's TorchScript export as a feature network, the scores and the
pixel statistics, the reference GAN and the runner's argument handling. Tiny and fast; the
training runs themselves are recorded in benchmarks/results/quality-cpu.md."""

import json
import zipfile

import pytest
import torch

pytest.importorskip("sklearn")

from stylegan_fast.bench.quality import classifier, digits, measure, run  # noqa: E402
from stylegan_fast.bench.quality.reference_gan import ReferenceGAN  # noqa: E402
from stylegan_fast.metrics import load_feature_net  # noqa: E402
from stylegan_fast.models import Generator, preset_configs  # noqa: E402
from stylegan_fast.train.data import ImageFolderDataset  # noqa: E402
from stylegan_fast.train.images import float_to_uint8, uint8_to_float  # noqa: E402


@pytest.fixture(scope="module")
def digit_set():
    return digits.digits_images(32)


def test_digits_images_shape_range_and_labels(digit_set):
    images, labels = digit_set
    assert images.shape == (1797, 1, 32, 32) and images.dtype == torch.float32
    assert images.min() == -1.0 and images.max() == 1.0
    assert sorted(labels.unique().tolist()) == list(range(10))
    # Bilinear up-sampling by 4 keeps each 4x4 block's mean close to the 8x8 source pixel.
    from sklearn.datasets import load_digits

    source = torch.from_numpy(load_digits().images[:5]).float() / 16 * 2 - 1
    pooled = torch.nn.functional.avg_pool2d(images[:5], 4)[:, 0]
    assert (pooled - source).abs().mean() < 0.15


@pytest.mark.parametrize("resolution", [4, 32.0, True])
def test_digits_images_rejects_bad_resolution(resolution):
    with pytest.raises(ValueError, match="resolution"):
        digits.digits_images(resolution)


def test_digits_zip_reads_back_as_a_labelled_dataset(tmp_path, digit_set):
    images, labels = digit_set
    path = digits.write_digits_zip(tmp_path / "digits.zip", 32)
    with zipfile.ZipFile(path) as archive:
        entries = json.loads(archive.read("dataset.json"))["labels"]
    assert len(entries) == 1797 and entries[0] == ["00000/img00000000.png", 0]
    dataset = ImageFolderDataset(path, 32, channels=1)
    assert len(dataset) == 1797 and dataset.label_dim == 10
    for index in (0, 1000, 1796):
        image, label = dataset[index]
        assert torch.equal(image, uint8_to_float(float_to_uint8(images[index])))
        assert int(label.argmax()) == int(labels[index])


def test_split_is_disjoint_fixed_and_checked():
    train, test = digits.split_indices(100, 0.25, seed=3)
    assert len(test) == 25 and len(train) == 75
    assert sorted(set(train) | set(test)) == list(range(100))
    assert (digits.split_indices(100, 0.25, seed=3)[1] == test).all()
    with pytest.raises(ValueError, match="test_fraction"):
        digits.split_indices(100, 1.0)


def test_feature_net_export_round_trip(tmp_path, rng):
    torch.manual_seed(0)
    model = classifier.DigitClassifier(width=4, feature_dim=8).eval()
    path = classifier.export_feature_net(model, tmp_path / "net.pt")
    net = load_feature_net(path, preprocessing="identity")
    x = torch.rand(5, 1, 32, 32, generator=rng) * 2 - 1
    with torch.no_grad():
        expected = model.features(x)
    assert expected.shape == (5, 8)
    # FeatureNet replicates greyscale to RGB; the classifier averages channels back.
    torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net(x.expand(-1, 3, -1, -1)), expected, rtol=1e-5, atol=1e-6)


def test_classifier_learns_a_separable_toy_set():
    # Two classes a blank image and a bright square apart: a few epochs separate them.
    images = -torch.ones(40, 1, 32, 32)
    images[20:, :, 8:24, 8:24] = 1.0
    labels = torch.tensor([0] * 20 + [1] * 20)
    model = classifier.train_classifier(images, labels, epochs=3, batch_size=8, max_shift=0)
    assert classifier.accuracy(model, images, labels) == 1.0


def test_fraction_outside_and_high_frequency_energy():
    x = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.01, 0.5, -0.2, 2.0])
    assert measure.fraction_outside(x) == pytest.approx(3 / 8)
    assert measure.fraction_outside(x, -2.0, 2.0) == 0.0
    flat = torch.full((2, 1, 8, 8), 0.3)
    assert measure.high_frequency_energy(flat) == pytest.approx(0.0, abs=1e-7)
    checker = (torch.arange(64).view(8, 8) + torch.arange(8).view(8, 1)) % 2 * 2.0 - 1.0
    checker = checker.view(1, 1, 8, 8)
    # Interior pixels: the 3x3 mean is -1/9 of the centre's sign -> |x - mean| = 10/9.
    assert measure.high_frequency_energy(checker) > 0.9
    assert measure.high_frequency_energy(checker * 3) == measure.high_frequency_energy(checker)
    with pytest.raises(TypeError):
        measure.fraction_outside(torch.ones(3, dtype=torch.int64))
    with pytest.raises(ValueError):
        measure.high_frequency_energy(torch.ones(3))


def test_scorer_gives_zero_for_the_reals_themselves(tmp_path, digit_set):
    torch.manual_seed(0)
    path = classifier.export_feature_net(classifier.DigitClassifier(4, 8), tmp_path / "n.pt")
    reals = digit_set[0][:200]
    scorer = measure.DigitsScorer(path, reals, kid_subsets=5, kid_subset_size=100)
    same = scorer.score(reals)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6) and same["outside"] == 0.0
    other = scorer.score(-reals)  # ink and background swapped
    assert other["fid"] > 1e3 * max(same["fid"], 1e-9) and other["kid"] > same["kid"]


def test_noise_strengths_and_seeded_samples():
    g, _ = preset_configs("tiny", img_channels=1, fmap_base=64, fmap_max=8)
    torch.manual_seed(0)
    G = Generator.from_config(g).eval()
    strengths = measure.noise_strengths(G)
    assert sorted(strengths) == sorted(f"{r}.{i}" for r in (4, 8, 16, 32) for i in (0, 1))
    assert all(v == 0.0 for v in strengths.values())  # StyleGAN starts them at zero
    with torch.no_grad():
        G.synthesis.blocks[3].layer1.epilogue.noise_strength.fill_(-0.5)
    assert measure.noise_strengths(G)["32.1"] == 0.5
    state = torch.random.get_rng_state()
    a = measure.sample_generator(G, 6, seed=1, batch=4)
    b = measure.sample_generator(G, 6, seed=1, batch=4)
    assert a.shape == (6, 1, 32, 32) and torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert not torch.equal(a, measure.sample_generator(G, 6, seed=1, noise_mode="none"))


def test_reference_gan_steps_and_samples():
    gan = ReferenceGAN(seed=0)
    before = [p.clone() for p in gan.G.parameters()]
    stats = gan.step(torch.rand(4, 1, 32, 32) * 2 - 1)
    assert set(stats) == {"loss/D", "loss/G"}
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.G.parameters()))
    samples = gan.sample(5, seed=2, batch=2)
    assert samples.shape == (5, 1, 32, 32) and samples.abs().max() <= 1.0
    assert torch.equal(samples, gan.sample(5, seed=2, batch=2))


def test_runner_arguments_and_bad_input(tmp_path, capsys):
    assert run._evals("1,2,50,200", 100.0) == [1.0, 2.0, 50.0, 100.0]
    assert run._assignments(["r1_gamma=10", "use_noise=false", "x=abc"], "--set") == {
        "r1_gamma": 10,
        "use_noise": False,
        "x": "abc",
    }
    with pytest.raises(ValueError, match="--set"):
        run._assignments(["r1_gamma"], "--set")
    code = run.main(["train", "--workdir", str(tmp_path), "--name", "x", "--kimg", "1"])
    assert code == 2
    assert "run `prepare` first" in capsys.readouterr().err


def test_steps_compares_the_kernels_with_the_reference_ops(tmp_path, capsys):
    digits.write_digits_zip(tmp_path / "digits.zip", 32)
    argv = ["steps", "--workdir", str(tmp_path), "--name", "s", "--steps", "2", "--every", "1"]
    assert run.main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 |")]
    cells = [float(v) for v in rows[0].strip("| ").split(" | ")]
    # One step from the same seed: the same losses (to float32 rounding), nearly the same images.
    assert cells[1] == pytest.approx(cells[2], rel=1e-5)
    assert cells[3] == pytest.approx(cells[4], rel=1e-5)
    assert cells[5] < 1e-2


def test_inspect_reports_speckle_per_noise_mode_and_level(tmp_path, capsys):
    from stylegan_fast.train.checkpoint import export_generator

    g, _ = preset_configs("tiny", img_channels=1, progressive=True, fmap_base=64, fmap_max=8)
    torch.manual_seed(0)
    path = export_generator(tmp_path / "G.safetensors", Generator.from_config(g))
    assert run.main(["inspect", "--network", str(path), "--num", "8"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record["noise_strength"]) >= {"32.0", "32.1"}
    assert record["speckle_random"] == record["speckle_none"]  # strengths start at zero
    assert [f"speckle_lod{k}" in record for k in range(4)] == [True] * 4
    assert 0 <= record["outside_by_0_2"] <= record["outside"] <= 1
