"""Metrics during training: ``train --metrics`` on the real tiny models with tiny TorchScript
feature and distance networks built here (metrics.jsonl at every snapshot, best.safetensors,
one real-statistics cache entry), the trainer's snapshot hook (best = lowest FID, kept across
a resume, TensorBoard mirror), and the options' one-line errors before training starts."""

import pytest
import torch
import train_fixtures as fixtures
from metric_nets import MeanSquare, TinyFeatures, script

from stylegan_fast import cli
from stylegan_fast.train import checkpoint as ckpt
from stylegan_fast.train.config import TrainingConfig
from stylegan_fast.train.loop import Trainer
from stylegan_fast.train.stats import read_stats

SHORT = ["--batch", "2", "--fixed", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nets")
    script(TinyFeatures(), folder / "features.pt")
    script(MeanSquare(), folder / "distance.pt")
    (folder / "garbage.pt").write_bytes(b"not a TorchScript file")
    return folder


def test_train_metrics_writes_a_line_per_snapshot_and_keeps_the_best(tmp_path, nets, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        *SHORT,
        "--kimg",
        "0.006",
        "--snap",
        "0.002",
        "--outdir",
        str(out),
        "--metrics",
        "fid,kid,pr,ppl",
        "--feature-net",
        str(nets / "features.pt"),
        "--feature-preprocessing",
        "identity",
        "--distance-net",
        str(nets / "distance.pt"),
        "--metrics-num",
        "8",
    ]
    assert cli.main(args) == 0
    lines = read_stats(out / "metrics.jsonl")
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert [line["snapshot"] for line in lines] == checkpoints
    assert [line["kimg"] for line in lines] == [0.002, 0.004, 0.006]
    for line in lines:
        for name in ("fid", "kid", "kid_std", "precision", "recall", "ppl", "seconds"):
            assert isinstance(line[name], float), (name, line)
        assert 0 <= line["precision"] <= 1 and 0 <= line["recall"] <= 1
        # FID, KID and PR share one image pass, whose time each of them includes.
        shared = max(line[f"seconds/{m}"] for m in ("fid", "kid", "pr"))
        assert line["seconds"] >= shared + line["seconds/ppl"]
    # best.safetensors is the EMA generator of the lowest-FID snapshot.
    best = min(lines, key=lambda line: line["fid"])
    state = ckpt.load_checkpoint(out / "checkpoints" / best["snapshot"])
    G_best = ckpt.load_generator(out / "best.safetensors")
    for name, value in G_best.state_dict().items():
        assert torch.equal(value, state["G_ema"][name]), name
    # The real images went through the feature net once (one cache entry with the features,
    # which FID, KID and PR read at every snapshot).
    assert len(list((out / "metrics-cache").glob("*.npz"))) == 1


def _trainer(outdir, values, with_metrics=True):
    """A tiny-double trainer whose snapshot metrics hand out ``values`` in turn."""
    torch.manual_seed(0)
    config = TrainingConfig(
        total_kimg=len(values) * 0.002,
        batch_size=2,
        checkpoint_kimg=0.002,
        sample_kimg=1.0,
        log_kimg=1.0,
        keep_checkpoints=None,
        sample_grid=(1, 1),
    )
    calls = iter(values)

    def metrics(G):
        assert G is trainer.G_ema and not G.training
        return next(calls)

    trainer = Trainer(
        fixtures.TinyGenerator(fixtures.TinyConfig()),
        fixtures.TinyDiscriminator(),
        fixtures.TensorDataset(fixtures.random_images(8)),
        config,
        outdir,
        style_mix_fn=fixtures.style_mix,
        show_progress=False,
        snapshot_metrics=metrics if with_metrics else None,
    )
    return trainer


class Scalars:
    """Stands in for a TensorBoard SummaryWriter: records add_scalar calls."""

    def __init__(self):
        self.calls = []

    def add_scalar(self, name, value, step):
        self.calls.append((name, value, step))

    def flush(self):
        pass

    def close(self):
        pass


def test_best_is_the_lowest_fid_so_far_and_survives_a_resume(tmp_path):
    out = tmp_path / "run"
    trainer = _trainer(out, [{"fid": 3.0}, {"fid": 1.0, "kid": 0.5}, {"fid": 2.0}])
    trainer.stats._tensorboard = Scalars()
    snapshots = []
    original = trainer.measure_snapshot

    def spy(path):
        values = original(path)
        snapshots.append((path, (out / "best.safetensors").read_bytes()))
        return values

    trainer.measure_snapshot = spy
    trainer.run()
    assert [r["fid"] for r in read_stats(out / "metrics.jsonl")] == [3.0, 1.0, 2.0]
    # Written at the first snapshot, replaced at the second (lower), kept at the third.
    assert snapshots[0][1] != snapshots[1][1] and snapshots[1][1] == snapshots[2][1]
    mirrored = [(name, value) for name, value, _ in trainer.stats._tensorboard.calls]
    assert ("metrics/fid", 1.0) in mirrored and ("metrics/kid", 0.5) in mirrored
    assert [
        step for name, _, step in trainer.stats._tensorboard.calls if name == "metrics/fid"
    ] == [
        2,
        4,
        6,
    ]
    trainer.close()

    # A later run in the same folder knows the best FID so far: 1.5 does not replace it.
    best = (out / "best.safetensors").read_bytes()
    again = _trainer(out, [{"fid": 1.5}])
    again.run()
    again.close()
    assert (out / "best.safetensors").read_bytes() == best
    assert [r["fid"] for r in read_stats(out / "metrics.jsonl")] == [3.0, 1.0, 2.0, 1.5]


def test_no_metrics_no_metrics_file(tmp_path):
    trainer = _trainer(tmp_path / "run", [{}], with_metrics=False)
    trainer.run()
    trainer.close()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    assert not (tmp_path / "run" / "best.safetensors").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--metrics", "fid,isc"], "--metrics: unknown metric 'isc' (expected"),
        (["--metrics", ""], "--metrics: unknown metric ''"),
        (["--metrics", "fid"], "--feature-net: --metrics fid needs a feature network file"),
        (["--metrics", "ppl,kid", "--distance-net", "D"], "--feature-net: --metrics kid needs"),
        (["--metrics", "ppl", "--feature-net", "F"], "--distance-net: --metrics ppl needs"),
        (["--metrics", "fid", "--feature-net", "F", "--metrics-num", "1"], "--metrics-num: must"),
        (["--metrics", "pr", "--feature-net", "F", "--metrics-num", "3"], "must be >= 4, got 3"),
        (["--feature-net", "F"], "--feature-net: used only with --metrics"),
        (["--metrics", "fid", "--feature-net", "missing.pt"], "--feature-net: no such file"),
        (["--metrics", "kid", "--feature-net", "G"], "--feature-net: G is not a TorchScript"),
        (["--metrics", "ppl", "--distance-net", "G"], "--distance-net: G is not a TorchScript"),
    ],
)
def test_bad_metric_options_stop_before_training(tmp_path, nets, capsys, extra, message):
    files = {"F": "features.pt", "D": "distance.pt", "G": "garbage.pt"}
    extra = [str(nets / files[a]) if a in files else a for a in extra]
    message = message.replace(" G ", f" {nets / 'garbage.pt'} ")
    out = tmp_path / "run"
    assert cli.main(["train", *SHORT, "--outdir", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()  # nothing trained, nothing written


def test_metrics_options_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--metrics", "--metrics-num", "--feature-net", "--distance-net", "--cond"):
        assert option in text
