"""The training loop on fixture modules: outputs of a run, bit-exact resume, progressive
growing with optimizer resets, precision modes, conditioning, bad setups."""

import json
import sys
import types

import pytest
import safetensors.torch
import torch
from PIL import Image
from train_fixtures import (
    TensorDataset,
    TinyConfig,
    TinyDiscriminator,
    TinyGenerator,
    random_images,
    style_mix,
)

from stylegan_fast.train import checkpoint as ckpt
from stylegan_fast.train.config import TrainingConfig
from stylegan_fast.train.loop import Trainer
from stylegan_fast.train.stats import read_stats

R = 8


def _models(seed, **config):
    torch.manual_seed(seed)
    return TinyGenerator(TinyConfig(resolution=R, progressive=True, **config)), TinyDiscriminator(R)


def _config(**overrides):
    values = dict(
        total_kimg=0.16,  # 20 steps of 8
        batch_size=8,
        batch_gpu=4,  # two accumulation rounds
        r1_interval=3,  # lazy R1
        initial_resolution=4,
        lod_training_kimg=0.04,
        lod_transition_kimg=0.04,
        ema_rampup=0.05,
        log_kimg=0.04,
        sample_kimg=0.08,
        checkpoint_kimg=0.04,
        keep_checkpoints=2,
        sample_grid=(4, 2),
    )
    values.update(overrides)
    return TrainingConfig(**values)


def _trainer(outdir, seed=0, dataset=None, config=None, **model_config):
    G, D = _models(seed, **model_config)
    dataset = dataset if dataset is not None else TensorDataset(random_images(16, R))
    return Trainer(
        G, D, dataset, config or _config(), outdir, style_mix_fn=style_mix, show_progress=False
    )


def _bits(tree):
    """Every tensor of a state tree as raw bytes, by path (for bit-exact comparison)."""
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

    visit(tree, "")
    return out


def _training_state(trainer):
    state = trainer.state_dict()
    return {k: state[k] for k in ("G", "D", "G_ema", "G_opt", "D_opt", "progress")}


def test_config_json_round_trip_and_validation():
    config = _config(lr_per_resolution={128: 0.0015, 256: 0.002}, adam_betas=(0.0, 0.99))
    again = TrainingConfig.from_json(config.to_json())
    assert again == config and again.lr_per_resolution == {128: 0.0015, 256: 0.002}
    assert again.adam_betas == (0.0, 0.99) and again.sample_grid == (4, 2)
    for kwargs, message in [
        ({"loss": "hinge"}, "loss must be one of"),
        ({"precision": "fp8"}, "precision must be one of"),
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"batch_gpu": 0}, "batch_gpu must be None or a positive int"),
        ({"total_kimg": 0}, "total_kimg must be a positive number"),
        ({"sample_grid": (0, 2)}, "sample_grid"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainingConfig(**kwargs)
    with pytest.raises(ValueError, match=r"unknown training options: \['lr'\]"):
        TrainingConfig.from_dict({"lr": 0.1})


def test_a_run_writes_stats_samples_checkpoints_and_an_export(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    initial = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    record = trainer.run()
    trainer.close()
    assert trainer.images_seen == 160 and trainer.step == 20 and trainer.d_steps == 20

    records = read_stats(tmp_path / "stats.jsonl")
    assert [r["kimg"] for r in records] == [0.04, 0.08, 0.12, 0.16] and record["lod"] == 0.0
    # Growing from 4² (lod 1) to 8² (lod 0): train, fade, train.
    assert [r["lod"] for r in records] == pytest.approx([1.0, 0.2, 0.0, 0.0])
    for r in records:
        for name in ("loss/G", "loss/D", "penalty/r1", "img_per_s", "lr/G", "lr/D"):
            assert isinstance(r[name], float), (name, r)
        assert r["lr/D"] == pytest.approx(0.001 * 3 / 4)  # lazy R1 every 3 steps: lr * k/(k+1)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] != []
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "checkpoint-000000120.safetensors",
        "checkpoint-000000160.safetensors",
    ]
    samples = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert samples == ["fakes-000000080.png", "fakes-000000160.png", "fakes-init.png", "reals.png"]
    assert Image.open(tmp_path / "samples" / "fakes-000000160.png").size == (4 * R, 2 * R)

    assert any(not torch.equal(v, initial[k]) for k, v in trainer.G.state_dict().items())
    assert not torch.equal(trainer.G_ema.mapping_layer.weight, trainer.G.mapping_layer.weight)
    assert float(trainer.G.w_avg.abs().sum()) > 0  # tracked for truncation
    assert float(trainer.G.lod) == float(trainer.D.lod) == float(trainer.G_ema.lod) == 0.0

    # The export is the EMA generator; the checkpoint rebuilds it too.
    module = types.ModuleType("stylegan_fast.models")
    module.Generator, module.GeneratorConfig = TinyGenerator, TinyConfig
    monkeypatch.setitem(sys.modules, "stylegan_fast.models", module)
    exported = ckpt.load_generator(tmp_path / "generator.safetensors")
    for name, value in trainer.G_ema.state_dict().items():
        assert torch.equal(exported.state_dict()[name], value), name
    from_checkpoint = ckpt.load_generator(
        tmp_path / "checkpoints" / "checkpoint-000000160.safetensors"
    )
    assert torch.equal(from_checkpoint.mapping_layer.weight, trainer.G_ema.mapping_layer.weight)
    state = ckpt.load_checkpoint(tmp_path / "checkpoints" / "checkpoint-000000160.safetensors")
    assert state["progress"] == {"images_seen": 160, "step": 20, "d_steps": 20, "lod": 0.0}
    assert TrainingConfig.from_dict(state["config"]["train"]) == trainer.config


def test_resume_continues_bit_exactly(tmp_path):
    """One uninterrupted run vs. a run stopped mid-fade (lod 0.5) and resumed by a new Trainer
    whose models start from other weights and whose global RNGs were disturbed."""
    full = _trainer(tmp_path / "full")
    full.run()
    expected = _bits(_training_state(full))

    first = _trainer(tmp_path / "split")
    first.run(until_kimg=0.064)  # 8 steps: mid-fade, lazy-R1 phase 8 % 3 != 0
    assert first.lod == pytest.approx(0.6) and first.step == 8
    first.close()
    torch.manual_seed(12345)
    torch.rand(100)
    second = _trainer(tmp_path / "split", seed=7)
    second.resume(second.checkpoints.latest())
    assert second.images_seen == 64
    second.run()
    resumed = _bits(_training_state(second))
    assert resumed.keys() == expected.keys()
    for path, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(resumed[path], value), path
        else:
            assert resumed[path] == value, path


def test_optimizer_state_restarts_when_a_new_level_fades_in(tmp_path):
    trainer = _trainer(tmp_path)
    weight = trainer.G.mapping_layer.weight
    steps, lods = [], []
    for _ in range(12):
        trainer.train_step()
        lods.append(trainer.lod)
        steps.append(int(trainer.G_opt.state[weight]["step"]))
    # A step's lod is the schedule's at the images seen before it: lod 1 up to 40 images,
    # the 4² -> 8² fade from 48 (floor changes: reset), lod 0 from 80 (ceil changes: reset).
    assert lods == pytest.approx([1.0] * 6 + [0.8, 0.6, 0.4, 0.2, 0.0, 0.0])
    assert steps == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 1, 2]


def test_fixed_resolution_never_touches_lod(tmp_path):
    G, D = TinyGenerator(TinyConfig(resolution=R)), TinyDiscriminator(R)  # not progressive
    trainer = Trainer(
        G,
        D,
        TensorDataset(random_images(16, R)),
        _config(total_kimg=0.016),
        tmp_path,
        style_mix_fn=style_mix,
        show_progress=False,
    )
    trainer.run()
    assert trainer.schedule is None and trainer.lod == 0.0 and float(G.lod) == 0.0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs(tmp_path, precision):
    trainer = _trainer(tmp_path, config=_config(total_kimg=0.024, precision=precision))
    trainer.run()
    record = read_stats(tmp_path / "stats.jsonl")[-1]
    assert all(isinstance(record[k], float) for k in ("loss/G", "loss/D"))
    assert trainer.G.mapping_layer.weight.dtype == torch.float32
    scaler_state = trainer.state_dict()["scaler"]["D"]
    assert (precision == "fp16") == bool(scaler_state)  # GradScaler only for fp16


def test_wgan_gp_and_conditional_training(tmp_path):
    labels = torch.nn.functional.one_hot(torch.arange(16) % 2, 2).float()
    dataset = TensorDataset(random_images(16, R), labels)
    config = _config(total_kimg=0.016, loss="wgan-gp")
    trainer = _trainer(tmp_path, dataset=dataset, config=config, c_dim=2)
    trainer.run()
    record = read_stats(tmp_path / "stats.jsonl")[-1]
    assert isinstance(record["penalty/gp"], float) and "penalty/r1" not in record
    assert (tmp_path / "samples" / "fakes-000000016.png").exists()


def test_bad_setups_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"dataset images are \[3, 4, 4\] but the generator makes \[3, 8, 8\]"
    ):
        _trainer(tmp_path, dataset=TensorDataset(random_images(16, 4)))
    with pytest.raises(
        ValueError, match="dataset has 0 label classes but the generator's c_dim is 2"
    ):
        _trainer(tmp_path, c_dim=2)
    with pytest.raises(ValueError, match="batch_gpu 3 must divide the per-rank batch 8"):
        _trainer(tmp_path, config=_config(batch_gpu=3))


def test_resume_with_other_options_warns(tmp_path):
    trainer = _trainer(tmp_path, config=_config(total_kimg=0.008))
    trainer.run()
    path = trainer.checkpoints.latest()
    other = _trainer(tmp_path / "other", config=_config(total_kimg=0.008, r1_gamma=1.0))
    with pytest.warns(UserWarning, match=r"differ from the checkpoint's: \['r1_gamma'\]"):
        other.resume(path)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ckpt.CheckpointError, match="truncated or corrupt"):
        other.resume(broken)
    assert json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[-1])["kimg"] == 0.008
    assert set(safetensors.torch.load_file(path)) >= {
        "G/mapping_layer.weight",
        "D_opt/state/0/exp_avg",
    }


@pytest.mark.cuda
def test_a_cuda_run_in_fp16_resumes_on_cpu(tmp_path):
    from stylegan_fast.train.distributed import DistributedContext

    G, D = _models(0)
    context = DistributedContext(0, 1, 0, torch.device("cuda", 0), None)
    config = _config(total_kimg=0.024, precision="fp16")
    trainer = Trainer(
        G,
        D,
        TensorDataset(random_images(16, R)),
        config,
        tmp_path,
        context,
        style_mix_fn=style_mix,
        show_progress=False,
    )
    trainer.run()
    assert trainer.G.mapping_layer.weight.device.type == "cuda"
    record = read_stats(tmp_path / "stats.jsonl")[-1]
    assert isinstance(record["loss/G"], float) and record["memory/peak_gib"] > 0
    state = ckpt.load_checkpoint(trainer.checkpoints.latest())
    assert state["G"]["mapping_layer.weight"].device.type == "cpu" and state["scaler"]["G"]
