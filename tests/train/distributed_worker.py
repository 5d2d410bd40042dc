"""The per-process body of the 2-process gloo test (a module of its own so that spawned
processes can import it): broadcast, sharded data, gradient averaging, rank-0 guards."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import torch
from torch import nn
from train_fixtures import (
    TensorDataset,
    TinyConfig,
    TinyDiscriminator,
    TinyGenerator,
    random_images,
    style_mix,
)

from stylegan_fast.train import distributed
from stylegan_fast.train.checkpoint import save_checkpoint
from stylegan_fast.train.config import TrainingConfig
from stylegan_fast.train.data import ShardedSampler
from stylegan_fast.train.loop import Trainer

DATASET_SIZE = 10
PER_RANK_BATCH = 3
STEPS = 5
SAMPLER_SEED = 11


def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(DATASET_SIZE, 6, generator=generator, dtype=torch.float64)
    y = torch.randn(DATASET_SIZE, 1, generator=generator, dtype=torch.float64)
    return x, y


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1)).double()
    net.register_buffer("step_count", torch.tensor(float(seed)))
    return net


def train(net: nn.Module, sampler: ShardedSampler, batch: int) -> list[int]:
    """Gradient descent on mean squared error, gradients averaged over ranks; returns the
    indices used. (Plain updates rather than torch.optim: an optimizer's first step imports
    torch._dynamo, seconds per spawned process.)"""
    x, y = dataset()
    indices = iter(sampler)
    used = []
    for _ in range(STEPS):
        chosen = [next(indices) for _ in range(batch)]
        used += chosen
        net.zero_grad(set_to_none=True)
        nn.functional.mse_loss(net(x[chosen]), y[chosen]).backward()
        distributed.all_reduce_gradients(net.parameters())
        with torch.no_grad():
            for p in net.parameters():
                p -= 0.1 * p.grad
    return used


LOOP_CONFIG = dict(
    total_kimg=0.048,
    batch_size=8,
    batch_gpu=4,
    r1_interval=2,
    initial_resolution=4,
    lod_training_kimg=0.016,
    lod_transition_kimg=0.016,
    log_kimg=0.024,
    sample_kimg=0.048,
    checkpoint_kimg=0.024,
    sample_grid=(2, 2),
)


def trainer(outdir: Path, context=None) -> Trainer:
    """The training loop on the fixtures: 6 steps of a global batch of 8 through a 4² -> 8²
    fade, in 2 micro-batches of 4 per step however they are spread over ranks and rounds."""
    torch.manual_seed(0)
    G = TinyGenerator(TinyConfig(resolution=8, progressive=True))
    D = TinyDiscriminator(8)
    dataset = TensorDataset(random_images(16, 8))
    return Trainer(
        G,
        D,
        dataset,
        TrainingConfig(**LOOP_CONFIG),
        outdir,
        context,
        style_mix_fn=style_mix,
        show_progress=False,
    )


def run(rank: int, world_size: int, port: int, outdir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    context = distributed.init_distributed("cpu", timeout=datetime.timedelta(seconds=120))
    try:
        assert context.backend == "gloo" and context.is_distributed
        assert (distributed.get_rank(), distributed.get_world_size()) == (rank, world_size)
        net = model(seed=100 + rank)  # different weights on every rank before the broadcast
        distributed.broadcast_module(net)
        initial = {k: v.clone() for k, v in net.state_dict().items()}
        sampler = ShardedSampler(DATASET_SIZE, rank, world_size, seed=SAMPLER_SEED)
        used = train(net, sampler, PER_RANK_BATCH)
        gathered = distributed.all_gather_objects({"rank": rank})
        mean_rank = distributed.all_reduce_mean(torch.tensor(float(rank), dtype=torch.float64))
        marker = Path(outdir) / "rank_zero_only.txt"
        distributed.rank_zero_only(lambda: marker.write_text(f"written by rank {rank}"))()
        distributed.barrier()
        loop = trainer(Path(outdir) / "loop", context)
        loop.run()
        loop.close()
        save_checkpoint(
            Path(outdir) / f"rank{rank}.safetensors",
            {
                "initial": initial,
                "final": net.state_dict(),
                "used": used,
                "gathered": gathered,
                "mean_rank": mean_rank,
                "is_main": distributed.is_main_process(),
                "loop": {name: loop.state_dict()[name] for name in ("G", "D", "G_ema")},
            },
        )
    finally:
        distributed.shutdown()


# Adam's first steps move each weight by about +-lr whatever its gradient's size, so a weight
# whose gradient is ~0 goes either way on the rounding of the gradient sum: measured, one
# process with 1 vs 2 threads differs by up to 7e-3 after 3 steps. A large eps makes the step
# proportional to the gradient (lr * g / eps for |g| << eps), so the comparison can be tight.
REAL_CONFIG = dict(
    total_kimg=0.008,
    g_lr=0.01,
    d_lr=0.01,
    adam_eps=1.0,
    batch_size=4,
    batch_gpu=2,
    r1_interval=2,
    log_kimg=0.004,
    sample_kimg=1.0,
    checkpoint_kimg=1.0,
    sample_grid=(2, 1),
)


def real_trainer(outdir: Path, context=None) -> Trainer:
    """The tiny preset on the bundled faces: 2 steps of a global batch of 4, in 2
    micro-batches of 2 (2 ranks x 1 round, or 1 process x 2 rounds)."""
    from stylegan_fast.models import Discriminator, Generator
    from stylegan_fast.train.data import BundledFaces

    torch.manual_seed(0)
    G, D = Generator.from_preset("tiny"), Discriminator.from_preset("tiny")
    return Trainer(
        G,
        D,
        BundledFaces(32, xflip=True),
        TrainingConfig(**REAL_CONFIG),
        outdir,
        context,
        show_progress=False,
    )


def run_real(rank: int, world_size: int, port: int, outdir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    context = distributed.init_distributed("cpu", timeout=datetime.timedelta(seconds=300))
    try:
        loop = real_trainer(Path(outdir) / "real", context)
        loop.run()
        loop.close()
        state = loop.state_dict()
        save_checkpoint(
            Path(outdir) / f"real-rank{rank}.safetensors",
            {name: state[name] for name in ("G", "D", "G_ema")},
        )
    finally:
        distributed.shutdown()
