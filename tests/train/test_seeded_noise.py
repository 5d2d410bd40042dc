"""``seed`` fixes the generator's per-layer noise too: in training (the trainer's own noise
generator, never torch's global one) and in the metrics (generated images, PPL with random
noise), and whole ``train --metrics`` runs. Real tiny models; at 8x8 their noise strengths are
raised, so the noise shows."""

import pytest
import torch
from metric_nets import TinyFeatures, script

from stylegan_fast import cli
from stylegan_fast.metrics import evaluate, generator_images
from stylegan_fast.models import Discriminator, Generator, preset_configs
from stylegan_fast.train import checkpoint as ckpt
from stylegan_fast.train.config import TrainingConfig
from stylegan_fast.train.data import BundledFaces
from stylegan_fast.train.loop import Trainer
from stylegan_fast.train.stats import read_stats

STEPS = 3
CHECKPOINT = "checkpoint-000000004.safetensors"


def _models():
    torch.manual_seed(0)  # one set of initial weights for every run
    g, d = preset_configs("tiny", resolution=8)
    G, D = Generator.from_config(g), Discriminator.from_config(d)
    with torch.no_grad():
        for name, parameter in G.named_parameters():
            if name.endswith("noise_strength"):
                parameter.fill_(0.5)
    return G, D


@pytest.fixture(scope="module")
def faces():
    return BundledFaces(8)


def _train(tmp_path, faces, seed, disturb):
    """``STEPS`` steps with ``seed``; torch's global RNG is reseeded with ``disturb`` before
    every step (a run's noise must not depend on what else the process draws)."""
    G, D = _models()
    config = TrainingConfig(
        total_kimg=1.0, batch_size=2, r1_interval=2, seed=seed, sample_grid=(1, 1)
    )
    trainer = Trainer(G, D, faces, config, tmp_path / f"run-{seed}-{disturb}", show_progress=False)
    for step in range(STEPS):
        torch.manual_seed(disturb + step)
        before = torch.get_rng_state()
        trainer.train_step()
        # The step drew its noise from the trainer's generator, not the global one.
        assert torch.equal(torch.get_rng_state(), before)
    trainer.close()
    return {name: value.clone() for name, value in trainer.G.state_dict().items()}


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, faces):
    first = _train(tmp_path, faces, seed=5, disturb=100)
    again = _train(tmp_path, faces, seed=5, disturb=200)
    other = _train(tmp_path, faces, seed=6, disturb=100)
    for name, value in first.items():
        assert torch.equal(again[name], value), name
    changed = [name for name, value in first.items() if not torch.equal(other[name], value)]
    assert any("synthesis" in name for name in changed), changed


def test_noise_of_a_seed_is_fixed_in_the_metrics(faces):
    G = _models()[0].eval()
    real = torch.stack([faces[i][0] for i in range(16)]).expand(-1, 3, -1, -1)

    def features(images):
        return images.flatten(1)[:, ::7]

    images = []
    for disturb in (1, 2):
        torch.manual_seed(disturb)
        images.append(generator_images(G, seed=3)(4))
    assert torch.equal(images[0], images[1])
    # The noise is really drawn: "const" noise gives other images from the same latents.
    assert not torch.allclose(images[0], generator_images(G, 3, noise_mode="const")(4))

    values = {}
    for seed, disturb in ((3, 1), (3, 2), (4, 1)):
        torch.manual_seed(disturb)
        fid = evaluate("fid10k", G, features, real, num=8, seed=seed)["value"]
        ppl = evaluate(
            "ppl_wend",
            G,
            distance_net=lambda a, b: (a - b).square().mean((1, 2, 3)),
            num=4,
            seed=seed,
            noise_mode="random",
            crop=None,
        )["value"]
        values[seed, disturb] = (fid, ppl)
    assert values[3, 1] == values[3, 2]
    assert values[4, 1][0] != values[3, 1][0] and values[4, 1][1] != values[3, 1][1]


def test_train_command_same_seed_same_weights_and_metrics(tmp_path):
    """Whole ``train --metrics`` runs: one --seed gives identical weights and metric values
    (the noise included), another --seed other ones."""
    features = script(TinyFeatures(), tmp_path / "features.pt")
    common = ["train", "--batch", "2", "--fixed", "--no-progress", "--device", "cpu"]
    common += ["--kimg", "0.004", "--snap", "0.004", "--metrics", "fid,pr", "--metrics-num", "8"]
    common += ["--feature-net", str(features), "--feature-preprocessing", "identity"]
    runs = {}
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert cli.main([*common, "--seed", seed, "--outdir", str(tmp_path / name)]) == 0
        state = ckpt.load_checkpoint(tmp_path / name / "checkpoints" / CHECKPOINT)
        [line] = read_stats(tmp_path / name / "metrics.jsonl")
        runs[name] = state["G"], {m: line[m] for m in ("fid", "precision", "recall")}
    (weights_a, metrics_a), (weights_b, metrics_b), (weights_c, metrics_c) = runs.values()
    assert metrics_a == metrics_b and metrics_a["fid"] != metrics_c["fid"]
    for name, value in weights_a.items():
        assert torch.equal(weights_b[name], value), name
    assert any(not torch.equal(weights_c[name], value) for name, value in weights_a.items())
