"""evaluate(): each named metric of a generator following the models contract equals the same
metric computed by hand from its parts; latents do not depend on the batch size; the cache
is used; bad requests raise."""

import numpy as np
import pytest
import torch
from metric_fixtures import LinearGenerator, make_cnn

from stylegan_fast.metrics import (
    METRICS,
    evaluate,
    evaluate_many,
    frechet_distance,
    generator_images,
    kernel_inception_distance,
    perceptual_path_length,
)


def squared_l2(a, b):
    return (a - b).square().flatten(1).sum(1)


@pytest.fixture
def setup():
    G = LinearGenerator(resolution=8, squash=True)
    real = torch.rand(60, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return G, real, make_cnn(seed=5, features=6)


def direct_features(cnn, images):
    with torch.no_grad():
        return cnn(images.float().clamp(-1, 1)).double().numpy()


def test_generator_images_do_not_depend_on_the_batch_size(setup):
    G = setup[0]
    whole = generator_images(G, seed=3)(8)
    pieces = generator_images(G, seed=3)
    torch.testing.assert_close(torch.cat([pieces(3), pieces(5)]), whole)
    assert not torch.allclose(generator_images(G, seed=4)(8), whole)


def test_fid_equals_the_hand_computation(setup, tmp_path):
    G, real, cnn = setup
    result = evaluate("fid10k", G, feature_net=cnn, data=real, num=40, batch_size=7, seed=2)
    assert result["metric"] == "fid10k" and result["num_gen"] == 40 and result["num_real"] == 60
    fake = generator_images(G, seed=2)(40)
    fr, ff = direct_features(cnn, real), direct_features(cnn, fake)
    expected = frechet_distance(
        fr.mean(0), np.cov(fr, rowvar=False), ff.mean(0), np.cov(ff, rowvar=False)
    )
    assert result["value"] == pytest.approx(expected, rel=1e-5)
    # Another batch size draws the same latents.
    again = evaluate("fid10k", G, feature_net=cnn, data=real, num=40, batch_size=40, seed=2)
    assert again["value"] == pytest.approx(result["value"], rel=1e-6)
    # Real statistics come from the cache the second time.
    first = evaluate("fid10k", G, feature_net=cnn, data=real, num=40, cache_dir=tmp_path)
    second = evaluate("fid10k", G, feature_net=cnn, data=real, num=40, cache_dir=tmp_path)
    assert not first["cache_hit"] and second["cache_hit"]
    assert second["value"] == pytest.approx(first["value"], rel=1e-12)


def test_kid_equals_the_hand_computation(setup):
    G, real, cnn = setup
    result = evaluate(
        "kid50k", G, feature_net=cnn, data=real, num=30, kid_subsets=5, kid_subset_size=20
    )
    fake = generator_images(G, seed=0)(30)
    expected = kernel_inception_distance(
        direct_features(cnn, real), direct_features(cnn, fake), 5, 20, seed=0
    )
    assert result["value"] == pytest.approx(expected[0], rel=1e-4)
    assert result["std"] == pytest.approx(expected[1], rel=1e-4)


@pytest.mark.parametrize("metric", ["ppl_w", "ppl_z", "ppl_wend", "ppl_zend"])
def test_ppl_equals_the_direct_call(setup, metric):
    G = setup[0]
    result = evaluate(metric, G, distance_net=squared_l2, num=30, crop=None, seed=1)
    spec = METRICS[metric]
    direct = perceptual_path_length(
        G, squared_l2, 30, space=spec.space, sampling=spec.sampling, crop=None, seed=1
    )
    assert result["value"] == pytest.approx(direct.value, rel=1e-12)
    assert (result["space"], result["sampling"], result["num_samples"]) == (
        spec.space,
        spec.sampling,
        30,
    )


def test_bad_requests_raise(setup):
    G, real, cnn = setup
    with pytest.raises(ValueError, match="metric must be one of fid50k, fid10k, kid50k"):
        evaluate("fid", G, feature_net=cnn, data=real)
    with pytest.raises(ValueError, match="needs feature_net"):
        evaluate("fid50k", G, data=real)
    with pytest.raises(ValueError, match="needs distance_net"):
        evaluate("ppl_w", G)
    with pytest.raises(ValueError, match="num must be None or an int >= 2"):
        evaluate("fid50k", G, feature_net=cnn, data=real, num=1)
    with pytest.raises(ValueError, match="real images are 16x16 but the generator makes 8x8"):
        evaluate("fid50k", G, feature_net=cnn, data=torch.zeros(4, 3, 16, 16), num=4)


def test_evaluate_many_shares_one_pass_and_equals_evaluate(setup):
    """FID, KID and PR of one count: the generator and the real images are read once, and
    each value is evaluate()'s; PPL rides along."""
    G, real, cnn = setup
    names = ["kid50k", "ppl_wend", "fid50k", "pr50k3"]
    common = dict(num=16, num_real=40, batch_size=8, seed=2)
    G.calls.clear()
    results = evaluate_many(names, G, cnn, real, distance_net=squared_l2, **common)
    forward_calls = [call for call in G.calls if call[0] == "synthesis"]
    assert len(forward_calls) == 2 + 16 // 8  # PPL's one batch of 8 paths x 2 ends, then 2
    assert list(results) == names
    for name in names:
        alone = evaluate(name, G, cnn, real, distance_net=squared_l2, **common)
        for key in ("value", "std", "precision", "recall", "num_gen", "num_real"):
            assert results[name].get(key) == alone.get(key), (name, key)


def test_evaluate_many_bad_requests(setup):
    G, real, cnn = setup
    with pytest.raises(TypeError, match="non-empty list of metric names"):
        evaluate_many("fid50k", G, cnn, real)
    with pytest.raises(TypeError, match="non-empty list of metric names"):
        evaluate_many([], G, cnn, real)
    with pytest.raises(ValueError, match="got 'isc'"):
        evaluate_many(["fid50k", "isc"], G, cnn, real)


@pytest.mark.cuda
def test_cuda_generator_and_feature_net_match_cpu(setup):
    # Latents are drawn on the CPU and moved, so a CUDA run sees the same paths and images.
    G, real, cnn = setup
    cpu = evaluate("fid10k", G, feature_net=cnn, data=real, num=20, batch_size=8)
    G_cuda, cnn_cuda = LinearGenerator(resolution=8, squash=True).cuda(), make_cnn(5, 6).cuda()
    cuda = evaluate("fid10k", G_cuda, feature_net=cnn_cuda, data=real, num=20, batch_size=8)
    # cuDNN may run the convolutions in TF32 (10-bit mantissa): a looser match.
    assert cuda["value"] == pytest.approx(cpu["value"], rel=2e-2, abs=1e-6)
    ppl_cpu = evaluate("ppl_z", G, distance_net=squared_l2, num=20, crop=None)
    ppl_cuda = evaluate("ppl_z", G_cuda, distance_net=squared_l2, num=20, crop=None)
    assert ppl_cuda["value"] == pytest.approx(ppl_cpu["value"], rel=1e-6)
