"""The snapshot metrics behind ``train --metrics``: names, the values they return, each equal
to evaluate()'s, and the real images read once across snapshots (the statistics cache)."""

import pytest
import torch
from metric_fixtures import LinearGenerator, make_cnn

from stylegan_fast.metrics import evaluate
from stylegan_fast.metrics.snapshot import SnapshotMetrics, parse_metric_names


class CountingImages(torch.utils.data.Dataset):
    """Real images that count how many times an item is read."""

    def __init__(self, images):
        self.images = images
        self.reads = 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.reads += 1
        return self.images[index], torch.zeros(0)


def distance(a, b):
    return (a - b).square().mean(dim=(1, 2, 3))


def test_parse_metric_names():
    assert parse_metric_names("fid, KID,pr,fid") == ["fid", "kid", "pr"]
    with pytest.raises(ValueError, match="--metrics: unknown metric 'is'"):
        parse_metric_names("fid,is")


def test_values_equal_evaluate_and_reals_are_read_once(tmp_path):
    G = LinearGenerator(resolution=8, squash=True)
    real = torch.rand(20, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    data = CountingImages(real)
    net = make_cnn()
    metrics = SnapshotMetrics(
        ["fid", "ppl", "pr", "kid"],
        num=12,
        feature_net=net,
        data=data,
        distance_net=distance,
        seed=4,
        cache_dir=tmp_path,
        data_key="counting",
    )
    first = metrics(G)
    reads = data.reads
    assert reads >= 12  # the first snapshot reads the real images
    second = metrics(G)
    # FID, KID and PR share one pass; later snapshots only peek at one image for its size.
    assert data.reads - reads <= 1
    assert set(first) == {
        "fid",
        "kid",
        "kid_std",
        "precision",
        "recall",
        "ppl",
        *(f"seconds/{name}" for name in ("fid", "kid", "pr", "ppl")),
    }
    for name in ("fid", "kid", "precision", "recall", "ppl"):
        assert first[name] == second[name], name
    common = dict(num=12, num_real=12, seed=4)
    assert first["fid"] == evaluate("fid50k", G, net, real, **common)["value"]
    assert first["kid"] == evaluate("kid50k", G, net, real, **common)["value"]
    pr = evaluate("pr50k3", G, net, real, **common)
    assert (first["precision"], first["recall"]) == (pr["precision"], pr["recall"])
    ppl = evaluate("ppl_wend", G, distance_net=distance, num=12, seed=4, crop=None)
    assert first["ppl"] == ppl["value"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="names must be some of"):
        SnapshotMetrics(["isc"], 8)
    with pytest.raises(ValueError, match="fid, kid, pr need feature_net and data"):
        SnapshotMetrics(["kid"], 8)
    with pytest.raises(ValueError, match="ppl needs distance_net"):
        SnapshotMetrics(["ppl"], 8)
