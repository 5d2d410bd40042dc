"""The training loop with the real models (``tiny`` preset) on the bundled faces: a run's
outputs and finite losses, bit-exact resume, progressive growing across level transitions,
export -> ``load_generator``, mixed precision on CPU, and two gloo ranks.

Sizes are kept small for CPU time: batches of 4 (2 accumulation rounds of 2), lazy R1 every
2 D steps, 2x2 sample grids. One tiny step of 4 images takes ~0.6 s on the loaded test machine.
"""

import socket

import distributed_worker as worker
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from stylegan_fast.models import Discriminator, Generator, preset_configs
from stylegan_fast.train import checkpoint as ckpt
from stylegan_fast.train.config import TrainingConfig
from stylegan_fast.train.data import BundledFaces
from stylegan_fast.train.loop import Trainer
from stylegan_fast.train.stats import read_stats

BATCH = 4


def _faces(resolution=32):
    # Built once per resolution: resizing the 100 faces costs ~0.1 s.
    if resolution not in _FACES:
        _FACES[resolution] = BundledFaces(resolution, xflip=True)
    return _FACES[resolution]


_FACES: dict[int, BundledFaces] = {}


def _config(steps, **overrides):
    values = dict(
        total_kimg=steps * BATCH / 1000,
        batch_size=BATCH,
        batch_gpu=2,
        r1_interval=2,
        log_kimg=BATCH / 1000,
        sample_kimg=1000.0,  # the run's end only
        checkpoint_kimg=1000.0,
        keep_checkpoints=None,
        ema_rampup=0.05,
        sample_grid=(2, 2),
    )
    values.update(overrides)
    return TrainingConfig(**values)


def _trainer(outdir, config, seed=0, **model_overrides):
    torch.manual_seed(seed)
    g, d = preset_configs("tiny", **model_overrides)
    G, D = Generator.from_config(g), Discriminator.from_config(d)
    return Trainer(G, D, _faces(g.resolution), config, outdir, show_progress=False)


def _bits(trainer):
    """Every tensor and number of the training state, by path (bytes for tensors)."""
    state = trainer.state_dict()
    out = {}

    def visit(value, path):
        if isinstance(value, torch.Tensor):
            out[path] = value.detach().contiguous().reshape(-1).view(torch.uint8).clone()
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{path}/{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit(item, f"{path}/{i}")
        else:
            out[path] = value

    visit({k: state[k] for k in ("G", "D", "G_ema", "G_opt", "D_opt", "scaler", "progress")}, "")
    return out


def _assert_same_bits(actual, expected):
    assert actual.keys() == expected.keys()
    for path, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(actual[path], value), path
        else:
            assert actual[path] == value, path


def test_tiny_run_resumes_bit_exactly_and_exports_the_ema_generator(tmp_path):
    """8 steps uninterrupted vs 5 steps, a new Trainer (other initial weights, disturbed
    global RNG) resumed from the checkpoint, 3 more steps."""
    steps, split = 8, 5
    config = _config(steps, checkpoint_kimg=split * BATCH / 1000)
    full = _trainer(tmp_path / "full", config)
    initial = {k: v.clone() for k, v in full.G.state_dict().items()}
    record = full.run()
    full.close()
    expected = _bits(full)

    records = read_stats(tmp_path / "full" / "stats.jsonl")
    assert len(records) == steps
    for r in records:
        for name in ("loss/G", "loss/D", "logits/real", "logits/fake"):
            assert torch.isfinite(torch.tensor(r[name])), (name, r)
    # Lazy R1 on every other D step (logged each step).
    r1 = [r["penalty/r1"] for r in records if "penalty/r1" in r]
    assert len(r1) == steps // 2 and all(torch.isfinite(torch.tensor(r1)))
    assert record["lod"] == 0.0 and full.step == steps and full.images_seen == steps * BATCH
    changed = [k for k, v in full.G.state_dict().items() if not torch.equal(v, initial[k])]
    assert any(k.startswith("mapping.") for k in changed)
    assert any(k.startswith("synthesis.") for k in changed)
    grid = Image.open(tmp_path / "full" / "samples" / f"fakes-{steps * BATCH:09d}.png")
    assert grid.size == (2 * 32, 2 * 32)

    # The export is G_ema; load_generator rebuilds a model giving the same images.
    exported = ckpt.load_generator(tmp_path / "full" / "generator.safetensors")
    z = torch.randn(3, full.G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = full.G_ema(z, noise_mode="const")
        assert torch.equal(exported(z, noise_mode="const"), reference)
        assert torch.equal(
            exported(z, truncation_psi=0.7, noise_mode="const"),
            full.G_ema(z, truncation_psi=0.7, noise_mode="const"),
        )
        assert not torch.equal(full.G(z, noise_mode="const"), reference)  # EMA != G

    first = _trainer(tmp_path / "split", config)
    first.run(until_kimg=split * BATCH / 1000)
    first.close()
    torch.manual_seed(12345)
    torch.rand(100)
    second = _trainer(tmp_path / "split", config, seed=7)
    second.resume(second.checkpoints.latest())
    assert (second.images_seen, second.step) == (split * BATCH, split)
    second.run()
    second.close()
    _assert_same_bits(_bits(second), expected)


def test_progressive_growing_crosses_levels_and_resumes_mid_fade(tmp_path):
    """8² -> 16² -> 32² in 10 steps (2 steps per level and per fade); stopped mid-fade and
    resumed bit-exactly; the images keep their [3, 32, 32] shape at every lod."""
    config = _config(
        10,
        initial_resolution=8,
        lod_training_kimg=2 * BATCH / 1000,
        lod_transition_kimg=2 * BATCH / 1000,
        checkpoint_kimg=4 * BATCH / 1000,
    )
    full = _trainer(tmp_path / "full", config, progressive=True)
    lods, shapes = [], []
    z = torch.randn(2, full.G.z_dim)
    for _ in range(10):
        stats = full.train_step()
        assert all(torch.isfinite(v) for v in stats.values()), stats
        lods.append(full.lod)
        with torch.no_grad():
            shapes.append(tuple(full.G_ema(z).shape))
        assert float(full.G.lod) == float(full.D.lod) == float(full.G_ema.lod) == full.lod
    # A step's lod is the schedule's at the images seen before it.
    assert lods == pytest.approx([2.0, 2.0, 2.0, 1.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0])
    assert set(shapes) == {(2, 3, 32, 32)}
    expected = _bits(full)

    first = _trainer(tmp_path / "split", config, progressive=True)
    first.run(until_kimg=4 * BATCH / 1000)  # stopped after a step mid-fade 8² -> 16²
    assert first.lod == pytest.approx(1.5)
    first.close()
    second = _trainer(tmp_path / "split", config, seed=3, progressive=True)
    second.resume(second.checkpoints.latest())
    assert second.lod == pytest.approx(1.5) and float(second.G.lod) == pytest.approx(1.5)
    second.run()
    second.close()
    _assert_same_bits(_bits(second), expected)
    records = read_stats(tmp_path / "split" / "stats.jsonl")
    assert [r["lod"] for r in records][-1] == 0.0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_step_on_cpu(tmp_path, precision):
    trainer = _trainer(tmp_path, _config(1, precision=precision))
    record = trainer.run()
    trainer.close()
    for name in ("loss/G", "loss/D", "penalty/r1"):  # step 0 is an R1 step
        assert torch.isfinite(torch.tensor(record[name])), (name, record)
    assert all(p.dtype == torch.float32 for p in trainer.G.parameters())
    assert (precision == "fp16") == bool(trainer.state_dict()["scaler"]["G"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_train_the_tiny_models_like_one_process(tmp_path):
    world = 2
    mp.spawn(
        worker.run_real,
        args=(world, _free_port(), str(tmp_path)),
        nprocs=world,
        join=True,
    )
    results = [ckpt.load_checkpoint(tmp_path / f"real-rank{r}.safetensors") for r in range(world)]
    single = worker.real_trainer(tmp_path / "single")
    initial = {n: {k: v.clone() for k, v in single.state_dict()[n].items()} for n in ("G", "D")}
    single.run()
    # The steps move the weights far beyond the comparison's tolerance (atol 1e-5).
    for network in ("G", "D"):
        moved = [
            (value - initial[network][name]).abs().max()
            for name, value in single.state_dict()[network].items()
            if value.is_floating_point()
        ]
        assert max(moved) > 1e-3 and sum(m > 1e-4 for m in moved) > len(moved) // 2, network
    single.close()
    for network in ("G", "D", "G_ema"):
        for name, value in single.state_dict()[network].items():
            rank0, rank1 = results[0][network][name], results[1][network][name]
            assert torch.equal(rank0, rank1), (network, name)
            torch.testing.assert_close(rank0, value, rtol=1e-4, atol=1e-5, msg=f"{network} {name}")
