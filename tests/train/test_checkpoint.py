"""Checkpoints: lossless state round trip, bit-exact resume (RNG included), atomic writes,
refusal of corrupt files, rotation, generator export and reload."""

import json
import math
import random
import struct
import sys
import types

import numpy as np
import pytest
import safetensors.torch
import torch
from train_fixtures import TinyConfig, TinyDiscriminator, TinyGenerator, style_mix

from stylegan_fast.train import checkpoint as ckpt
from stylegan_fast.train import state_tree
from stylegan_fast.train.checkpoint import CheckpointError, CheckpointManager
from stylegan_fast.train.losses import StyleGANLoss
from stylegan_fast.train.rng import capture_rng_state, restore_rng_state


def _bytes(t):
    return t.contiguous().reshape(-1).view(torch.uint8)


def assert_same_tree(a, b, path="root"):
    assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.equal(_bytes(a), _bytes(b)), path  # bitwise: -0.0 and NaN included
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same_tree(a[key], b[key], f"{path}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{path}/{i}")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


def test_state_round_trip_is_lossless(tmp_path):
    base = torch.arange(12, dtype=torch.float32)
    state = {
        "tensors": {
            "f32": torch.randn(3, 4),
            "bf16": torch.randn(5).bfloat16(),
            "f16": torch.tensor([65504.0, -0.0], dtype=torch.float16),
            "f64": torch.tensor(math.pi, dtype=torch.float64),  # 0-dim
            "i64": torch.tensor([2**62, -1]),
            "bool": torch.tensor([True, False]),
            "u8": torch.tensor([0, 255], dtype=torch.uint8),
            "empty": torch.zeros(0, 3),
            "view": base[2:8].view(2, 3),  # shares storage with "base"
            "base": base,
            "channels_last": torch.randn(1, 3, 2, 2).to(memory_format=torch.channels_last),
        },
        "numbers": [1, -2.5, float("nan"), float("inf"), -float("inf"), 1e-300, True, None],
        "tuple": (0.0, 0.99),
        "int_keys": {0: {"step": torch.tensor(3.0)}, 7: "x"},
        "dollar": {"$tensor": "not a reference"},
        "text": "ünïcode",
    }
    path = ckpt.save_checkpoint(tmp_path / "state.safetensors", state)
    loaded = ckpt.load_checkpoint(path)
    assert_same_tree(state, loaded)
    # Plain safetensors tools read the file too.
    assert set(safetensors.torch.load_file(path)) >= {"tensors/f32", "int_keys/0/step"}


def test_unsupported_values_are_named():
    with pytest.raises(TypeError, match="state at 'a/b' is a ndarray"):
        state_tree.encode({"a": {"b": np.zeros(2)}})
    with pytest.raises(TypeError, match="dict keys must be str or int"):
        state_tree.encode({"a": {(1, 2): 3}})


def _training_setup(seed):
    torch.manual_seed(seed)
    G, D = TinyGenerator(), TinyDiscriminator()
    G_opt = torch.optim.Adam(G.parameters(), lr=0.01, betas=(0.0, 0.99))
    D_opt = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.0, 0.99))
    return G, D, G_opt, D_opt


def _train(G, D, G_opt, D_opt, generator, steps):
    loss = StyleGANLoss(G, D, r1_interval=2, style_mix_fn=style_mix)
    for step in range(steps):
        reals = torch.randn(4, 3, 4, 4) + np.random.standard_normal() + random.random()
        z = torch.randn(4, G.z_dim, generator=generator)
        D_opt.zero_grad(set_to_none=True)
        loss.discriminator_loss(reals, None, z, None, generator)[0].backward()
        if loss.is_regularization_step(step):
            loss.discriminator_regularization(reals, None)[0].backward()
        D_opt.step()
        G_opt.zero_grad(set_to_none=True)
        loss.generator_loss(torch.randn(4, G.z_dim, generator=generator), None, generator)[
            0
        ].backward()
        G_opt.step()


def _state(G, D, G_opt, D_opt, generator):
    return {
        "G": G.state_dict(),
        "D": D.state_dict(),
        "G_opt": G_opt.state_dict(),
        "D_opt": D_opt.state_dict(),
        "rng": capture_rng_state({"train": generator}),
        "config": {"G": G.config.to_dict()},
    }


def test_resume_continues_bit_exactly(tmp_path):
    """Train 3 steps, checkpoint, train 3 more; a fresh process state restored from the
    checkpoint trains the same 3 steps to bit-identical weights and optimizer state."""
    G, D, G_opt, D_opt = _training_setup(0)
    generator = torch.Generator().manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    _train(G, D, G_opt, D_opt, generator, 3)
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", _state(G, D, G_opt, D_opt, generator))
    _train(G, D, G_opt, D_opt, generator, 3)
    uninterrupted = _state(G, D, G_opt, D_opt, generator)

    torch.manual_seed(99)  # everything different before the restore
    np.random.seed(99)
    random.seed(99)
    G2, D2, G2_opt, D2_opt = _training_setup(42)
    generator2 = torch.Generator().manual_seed(99)
    state = ckpt.load_checkpoint(path)
    G2.load_state_dict(state["G"])
    D2.load_state_dict(state["D"])
    G2_opt.load_state_dict(state["G_opt"])
    D2_opt.load_state_dict(state["D_opt"])
    restore_rng_state(state["rng"], {"train": generator2})
    _train(G2, D2, G2_opt, D2_opt, generator2, 3)
    resumed = _state(G2, D2, G2_opt, D2_opt, generator2)
    assert_same_tree(uninterrupted, resumed)
    assert uninterrupted["G_opt"]["param_groups"][0]["betas"] == (0.0, 0.99)


def test_rng_capture_restore_covers_every_generator():
    generator = torch.Generator().manual_seed(5)
    state = capture_rng_state({"g": generator})

    def draw():
        return (
            torch.rand(3).tolist(),
            np.random.standard_normal(3).tolist(),
            np.random.randint(0, 10**9),
            random.random(),
            random.gauss(0, 1),
            torch.rand(2, generator=generator).tolist(),
        )

    np.random.standard_normal()  # leave numpy with a cached gaussian half
    state = capture_rng_state({"g": generator})
    first = draw()
    restore_rng_state(state, {"g": generator})
    assert draw() == first
    with pytest.raises(ValueError, match=r"holds generators \['g'\] but \[\] were given"):
        restore_rng_state(state)
    with pytest.raises(ValueError, match="not an RNG state"):
        restore_rng_state({"torch_cpu": state["torch_cpu"]})
    with pytest.raises(TypeError, match="must be a torch.Generator"):
        capture_rng_state({"g": 3})


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"step": 1, "w": torch.ones(1000)})
    good_bytes = path.read_bytes()

    def crash_midway(tensors, filename, metadata=None):
        with open(filename, "wb") as stream:
            stream.write(b"partial" * 100)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, {"step": 2, "w": torch.zeros(1000)})
    monkeypatch.undo()

    def crash_before_rename(src, dst):
        raise KeyboardInterrupt  # e.g. the process is killed between write and rename

    monkeypatch.setattr(ckpt.os, "replace", crash_before_rename)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, {"step": 3, "w": torch.zeros(1000)})
    monkeypatch.undo()
    assert path.read_bytes() == good_bytes
    assert ckpt.load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary left


def _header(path):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return data, length, json.loads(data[8 : 8 + length])


def test_corrupt_files_are_refused(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "c.safetensors", {"step": 7, "w": torch.randn(256)})
    data, length, header = _header(path)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated.safetensors: not a readable safetensors"):
        ckpt.load_checkpoint(truncated)

    flipped = bytearray(data)
    flipped[-5] ^= 0x01  # one bit of one weight
    altered = tmp_path / "altered.safetensors"
    altered.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="altered.safetensors: integrity check failed"):
        ckpt.load_checkpoint(altered)

    # Edit the JSON state (step 7 -> 8) keeping the header's length.
    text = data[8 : 8 + length].decode()
    assert '\\"step\\": 7' in text
    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(
        data[:8] + text.replace('\\"step\\": 7', '\\"step\\": 8').encode() + data[8 + length :]
    )
    with pytest.raises(CheckpointError, match="integrity check failed"):
        ckpt.load_checkpoint(edited)

    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a stylegan_fast checkpoint"):
        ckpt.load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no such file"):
        ckpt.load_checkpoint(tmp_path / "missing.safetensors")
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        ckpt.load_checkpoint(empty)


def test_manager_rotates_and_finds_latest(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    stale = directory / ".checkpoint-000000100.safetensors.abc123.tmp"
    stale.write_bytes(b"left by a killed save")
    manager = CheckpointManager(directory, keep_last=2)
    assert not stale.exists() and manager.latest() is None
    for number in (1000, 2000, 3000, 10000):
        manager.save({"images": number}, number)
    assert [p.name for p in manager.checkpoints()] == [
        "checkpoint-000003000.safetensors",
        "checkpoint-000010000.safetensors",
    ]
    assert ckpt.load_checkpoint(manager.latest())["images"] == 10000
    keep_all = CheckpointManager(directory, keep_last=None)
    keep_all.save({}, 20000)
    keep_all.save({}, 30000)
    assert len(keep_all.checkpoints()) == 4
    with pytest.raises(ValueError, match="keep_last"):
        CheckpointManager(directory, keep_last=0)
    with pytest.raises(ValueError, match="non-negative int"):
        manager.path_for(-1)


@pytest.fixture
def fake_models(monkeypatch):
    """``stylegan_fast.models`` as the contract describes it, served by the tiny fixtures (the
    real models are merged separately; the test below exercises them when present)."""
    module = types.ModuleType("stylegan_fast.models")
    module.Generator = TinyGenerator
    module.GeneratorConfig = TinyConfig
    monkeypatch.setitem(sys.modules, "stylegan_fast.models", module)
    return module


def test_export_and_load_generator(tmp_path, fake_models):
    torch.manual_seed(0)
    G = TinyGenerator(TinyConfig(num_ws=4))
    G.w_avg.normal_()
    G_ema = TinyGenerator(TinyConfig(num_ws=4))
    path = ckpt.export_generator(tmp_path / "g.safetensors", G)
    loaded = ckpt.load_generator(path)
    assert loaded.config == G.config and not loaded.training
    assert all(not p.requires_grad for p in loaded.parameters())
    for name, value in G.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    z = torch.randn(3, 4)
    assert torch.equal(
        loaded(z, truncation_psi=0.5, noise_mode="const"),
        G(z, truncation_psi=0.5, noise_mode="const"),
    )
    # Plain safetensors reads an export: weights under their own names, config as JSON.
    from safetensors import safe_open

    with safe_open(path, "pt") as handle:
        assert json.loads(handle.metadata()["config"])["num_ws"] == 4
        assert set(handle.keys()) == set(G.state_dict())
    # A half-precision export stores fp16; loading copies it into the model's fp32 weights.
    half_path = ckpt.export_generator(tmp_path / "h.safetensors", G, torch.float16)
    assert safetensors.torch.load_file(half_path)["mapping_layer.weight"].dtype == torch.float16
    half = ckpt.load_generator(half_path)
    assert torch.equal(half.mapping_layer.weight, G.mapping_layer.weight.half().float())

    state = {"G": G.state_dict(), "G_ema": G_ema.state_dict(), "config": {"G": G.config.to_dict()}}
    checkpoint_path = ckpt.save_checkpoint(tmp_path / "c.safetensors", state)
    from_ema = ckpt.load_generator(checkpoint_path)
    assert torch.equal(from_ema.mapping_layer.weight, G_ema.mapping_layer.weight)
    from_g = ckpt.load_generator(checkpoint_path, prefer_ema=False)
    assert torch.equal(from_g.mapping_layer.weight, G.mapping_layer.weight)
    with pytest.raises(CheckpointError, match="is a generator export"):
        ckpt.load_checkpoint(path)
    no_g = ckpt.save_checkpoint(tmp_path / "d.safetensors", {"D": {}})
    with pytest.raises(CheckpointError, match="holds no generator"):
        ckpt.load_generator(no_g)
    with pytest.raises(TypeError, match="must have a .config"):
        ckpt.export_generator(tmp_path / "x.safetensors", TinyDiscriminator())


def test_export_and_load_real_generator(tmp_path):
    from stylegan_fast.models import Generator

    G = Generator.from_preset("tiny", progressive=True)
    G.set_lod(0.5)
    path = ckpt.export_generator(tmp_path / "g.safetensors", G)
    loaded = ckpt.load_generator(path)
    assert loaded.progressive and float(loaded.lod) == 0.5  # the lod buffer travels too
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        assert torch.equal(loaded(z, noise_mode="const"), G.eval()(z, noise_mode="const"))
