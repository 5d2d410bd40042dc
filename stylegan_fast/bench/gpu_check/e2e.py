"""The GPU check's end-to-end rows: generator inference at 256² and 1024² and the 256² training
step (D on reals + fakes, R1 every step, G; Adam) in bf16, each with and without CUDA-graph
replay (``auto+graph``) and beside the plain-PyTorch StyleGAN1 peer, batch 32 — the
workloads of the anchor table's end-to-end section. A dry run runs the same rows with the
``tiny`` preset on the CPU (the graph rows then record why they cannot run there).
"""

from __future__ import annotations

import types
from pathlib import Path

import torch

from ...models import preset_configs
from ..e2e import flops, results, runner
from .budget import Budget

E2E_FILE = "e2e.csv"
GPU_BATCH = 32
# (workload, preset, precision, providers), most important first; the peer first in each, so
# the rows after it carry their speed-up over it.
GPU_PLAN = (
    ("generator", "stylegan-256", "fp32", ("peer", "auto", "auto+graph")),
    ("train", "stylegan-256", "bf16", ("peer", "auto", "auto+graph")),
    ("generator", "stylegan-1024", "fp32", ("peer", "auto", "auto+graph")),
    ("generator", "stylegan-256", "fp16", ("peer", "auto", "auto+graph")),
    ("train", "stylegan-256", "fp32", ("peer", "auto", "auto+graph")),
)
DRY_PLAN = (
    ("generator", "tiny", "fp32", ("peer", "auto", "auto+graph")),
    ("train", "tiny", "fp32", ("peer", "auto", "auto+graph")),
)


def run(out: Path, device: torch.device, budget: Budget, env: dict, dry_run: bool, log=print):
    """Measures the plan's rows until the budget runs out; appends them to ``out/e2e.csv``.
    Returns the number of rows not reached."""
    plan = DRY_PLAN if dry_run else GPU_PLAN
    batch = 2 if dry_run else GPU_BATCH
    peak_tf = runner.matmul_tflops(device, quick=dry_run)
    log(f"e2e: matmul {peak_tf:.1f} TFLOP/s ({'fp32' if dry_run else 'bf16'}), batch {batch}")
    todo = [(w, p, prec, prov) for w, p, prec, provs in plan for prov in provs]
    csv_env = {**env, "run_id": f"gpu_check-{env.get('git_sha', 'unknown')}"}
    peer_ips: dict[tuple[str, str, str], float] = {}
    for index, (workload, preset, precision, provider) in enumerate(todo):
        if not budget.allows(5.0):
            log(f"e2e: budget spent; {len(todo) - index} of {len(todo)} rows not reached")
            return len(todo) - index
        g_cfg, d_cfg = preset_configs(preset)
        if workload == "generator":
            gflop = flops.generator_flops(g_cfg) / 1e9
            reps, warmup = (2, 1) if dry_run else (10, 3)
        else:
            gflop = flops.train_step_flops(g_cfg, d_cfg, 1) / 1e9
            reps, warmup = (2, 1) if dry_run else (5, 2)
        args = types.SimpleNamespace(r1_every=1, warmup=warmup, reps=reps)
        row = runner.measure(
            workload, provider, preset, batch, precision, "nchw", device, args, gflop, peak_tf
        )
        key = (workload, preset, precision)
        if provider == "peer" and row.images_per_s:
            peer_ips[key] = row.images_per_s
        if row.images_per_s and key in peer_ips:
            row.vs_peer = row.images_per_s / peer_ips[key]
        results.append_csv(out / E2E_FILE, [row], csv_env, peak_tf)
        log(runner._format(row))
    return 0
