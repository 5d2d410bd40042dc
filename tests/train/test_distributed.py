"""Distributed helpers: single-process behaviour, and two real processes under gloo."""

import socket

import distributed_worker as worker
import pytest
import torch
import torch.multiprocessing as mp

from stylegan_fast.train import distributed
from stylegan_fast.train.checkpoint import load_checkpoint
from stylegan_fast.train.data import ShardedSampler


def test_single_process_without_torchrun(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    context = distributed.init_distributed("cpu")
    assert (context.rank, context.world_size, context.backend) == (0, 1, None)
    assert context.is_main and not context.is_distributed and context.device.type == "cpu"
    assert distributed.is_main_process() and distributed.get_world_size() == 1
    assert distributed.rank_zero_only(lambda: 42)() == 42
    net = torch.nn.Linear(2, 1)
    net(torch.ones(1, 2)).sum().backward()
    grad = net.weight.grad.clone()
    distributed.all_reduce_gradients(net.parameters())  # one process: unchanged
    distributed.broadcast_module(net)
    assert torch.equal(net.weight.grad, grad)
    assert distributed.all_gather_objects(3) == [3]


def test_bad_torchrun_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match=r"RANK must be in \[0, WORLD_SIZE=2\)"):
        distributed.init_distributed("cpu")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        distributed.init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be an int"):
        distributed.init_distributed("cpu")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        distributed.init_distributed("meta")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_global_batch(tmp_path):
    world = 2
    mp.spawn(worker.run, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    results = [load_checkpoint(tmp_path / f"rank{r}.safetensors") for r in range(world)]

    # Broadcast: both ranks start from rank 0's weights and buffers (seeded 100).
    reference_start = worker.model(seed=100).state_dict()
    for result in results:
        for name, value in reference_start.items():
            assert torch.equal(result["initial"][name], value), name
    # Sharding: each step's per-rank batches are disjoint and form the single-process batch.
    single_net = worker.model(seed=100)
    single_used = worker.train(
        single_net,
        ShardedSampler(worker.DATASET_SIZE, seed=worker.SAMPLER_SEED),
        2 * worker.PER_RANK_BATCH,
    )
    # (Rank r's k-th item is item r + 2k of the one-process stream, so every step's two
    # per-rank batches together are exactly the one-process batch.)
    assert len(single_used) == worker.STEPS * 2 * worker.PER_RANK_BATCH
    for k, index in enumerate(single_used):
        assert results[k % world]["used"][k // world] == index
    b = worker.PER_RANK_BATCH
    for step in range(worker.STEPS):
        per_rank = [r["used"][step * b : (step + 1) * b] for r in results]
        assert sorted(per_rank[0] + per_rank[1]) == sorted(
            single_used[step * 2 * b : (step + 1) * 2 * b]
        )
    # Averaged gradients: identical parameters on both ranks, equal to the one-process run.
    for name, value in single_net.state_dict().items():
        assert torch.equal(results[0]["final"][name], results[1]["final"][name]), name
        torch.testing.assert_close(results[0]["final"][name], value, rtol=1e-12, atol=1e-14)
    assert not torch.equal(results[0]["final"]["0.weight"], results[0]["initial"]["0.weight"])
    # Collectives and rank-0 guards.
    assert results[0]["gathered"] == results[1]["gathered"] == [{"rank": 0}, {"rank": 1}]
    assert float(results[1]["mean_rank"]) == 0.5
    assert [r["is_main"] for r in results] == [True, False]
    assert (tmp_path / "rank_zero_only.txt").read_text() == "written by rank 0"

    # The training loop: 2 ranks x 1 round give the model of 1 process x 2 rounds.
    single = worker.trainer(tmp_path / "single")
    single.run()
    for network in ("G", "D", "G_ema"):
        expected = single.state_dict()[network]
        for name, value in expected.items():
            rank0, rank1 = results[0]["loop"][network][name], results[1]["loop"][network][name]
            assert torch.equal(rank0, rank1), (network, name)
            torch.testing.assert_close(rank0, value, rtol=1e-5, atol=1e-6, msg=f"{network} {name}")
    assert float(results[0]["loop"]["G"]["lod"]) == 0.0
    # Only rank 0 wrote the run's files.
    assert sorted(p.name for p in (tmp_path / "loop").iterdir()) == [
        "checkpoints",
        "generator.safetensors",
        "samples",
        "stats.jsonl",
    ]
