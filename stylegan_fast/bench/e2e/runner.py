"""Runs the end-to-end benchmarks: every (workload, preset, precision, layout, provider).

Timing: ``harness.time_reps`` (CUDA events around each rep on a GPU, ``perf_counter`` on a
CPU), median of ``reps`` after ``warmup``; the first call is timed on its own (a compiled
provider's cold compile). One rep is one generator batch, or ``max(r1_every, 1)`` training
steps (so a lazy-R1 rep holds exactly one R1), reported per step. Peak memory is
``torch.cuda.max_memory_allocated`` from building the models to the last rep (weights,
optimizer state and activations; CUDA only).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import time
from pathlib import Path

import torch

from ...models import preset_configs
from .. import harness
from . import flops, results, workloads

GEN_PRESETS_CUDA = ["stylegan-256", "stylegan-1024"]
TRAIN_PRESETS_CUDA = ["stylegan-256"]
LAYOUTS = ("nchw", "channels_last")


def add_arguments(parser: argparse.ArgumentParser, shared: bool = True) -> None:
    """The end-to-end options. ``shared=False`` leaves out those the op benchmark's parser
    already has (``--device --dtype --batch --quick --reps --warmup --threads --results-dir
    --no-save``), which then apply to both."""
    e2e = parser.add_argument_group("end-to-end benchmarks")
    harness.add_repeatable(
        e2e,
        "--workload",
        choices=workloads.WORKLOADS,
        help="generator (inference) and/or train (one training step); default both",
    )
    harness.add_repeatable(
        e2e,
        "--preset",
        help="model preset (repeatable); default on CUDA stylegan-256 + stylegan-1024 for the "
        "generator and stylegan-256 for training, on CPU tiny",
    )
    names = ["--e2e-provider"] + (["--provider"] if shared else [])
    harness.add_repeatable(
        e2e,
        *names,
        dest="e2e_provider",
        choices=workloads.ALL_PROVIDERS,
        help="repeatable; default every provider the device runs (no compiled ones on CPU)",
    )
    harness.add_repeatable(
        e2e,
        "--layout",
        choices=LAYOUTS,
        help="memory format of weights and activations (repeatable; default nchw)",
    )
    e2e.add_argument(
        "--r1-every",
        type=int,
        default=1,
        help="R1 every k training steps (1, the default, as the H100 anchor; 16 is "
        "StyleGAN2's lazy regularisation; 0 none)",
    )
    e2e.add_argument(
        "--save-cpu",
        action="store_true",
        help="record CPU runs too (they are not performance data on a shared machine)",
    )
    if not shared:
        return
    harness.add_repeatable(
        parser,
        "--dtype",
        choices=sorted(workloads.PRECISIONS),
        help="repeatable; default fp32+fp16+bf16 (generator) and fp32+bf16 (train) on CUDA, "
        "fp32 on CPU",
    )
    parser.add_argument("--batch", type=int, default=None, help="N (default 32; 2 on CPU)")
    parser.add_argument("--quick", action="store_true", help="tiny preset, few reps")
    harness.add_run_arguments(parser)


def matmul_tflops(device: torch.device, quick: bool) -> float:
    """Measured matrix rate, the MFU denominator: a square bf16 matmul of 8192 on CUDA; on a
    CPU (where bf16 matmuls are emulated, ~100x slower) an fp32 one of 512."""
    cuda = device.type == "cuda"
    n, dtype = (8192, torch.bfloat16) if cuda else (512, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = harness.time_reps(lambda i: a @ b, device, warmup=2, reps=3 if quick else 10)
    return 2 * n**3 / seconds / 1e12


def _time_call(call, device, warmup: int, reps: int) -> tuple[float, float]:
    """``(first-call seconds, median seconds)``."""
    t0 = time.perf_counter()
    call(0)
    harness._sync(device)
    first = time.perf_counter() - t0
    return first, harness.time_reps(lambda i: call(i + 1), device, max(warmup - 1, 0), reps)


def measure(workload, provider, preset, batch, precision, layout, device, args, gflop, peak_tf):
    """One row: ``provider`` running ``workload`` (``args``: ``r1_every``, ``warmup``,
    ``reps``); a provider that cannot run it gives a row whose note says why."""
    cuda = device.type == "cuda"
    channels_last = layout == "channels_last"
    every = args.r1_every if workload == "train" else ""
    base = dict(
        workload=workload,
        preset=preset,
        resolution=preset_configs(preset)[0].resolution,
        batch=batch,
        precision=precision,
        channels_last=channels_last,
        provider=provider,
        r1_every=every,
        gflop_per_image=gflop,
    )
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        if workload == "generator":
            call = workloads.generator_call(
                provider, preset, batch, precision, channels_last, device
            )
        else:
            call = workloads.train_step_call(
                provider, preset, batch, precision, channels_last, device, args.r1_every
            )
        steps = getattr(call, "steps_per_call", 1)
        first, seconds = _time_call(call, device, args.warmup, args.reps)
    except Exception as exc:  # a provider that cannot run this workload: say why, go on
        text = str(exc).splitlines()[0][:100] if str(exc) else ""
        return results.E2ERow(
            **base, ms_per_iter=None, images_per_s=None, peak_mem_mib=None, tflops=None,
            mfu_pct=None, vs_peer=None, note=f"{type(exc).__name__}: {text}",
        )  # fmt: skip
    finally:
        gc.collect()
    seconds /= steps
    ips = batch / seconds
    tflops = gflop * ips / 1e3
    note = f"first call {first:.1f} s" if "compile" in provider else ""
    return results.E2ERow(
        **base,
        ms_per_iter=seconds * 1e3,
        images_per_s=ips,
        peak_mem_mib=torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
        tflops=tflops,
        mfu_pct=100 * tflops / peak_tf,
        vs_peer=None,
        note=note,
    )


def _format(r: results.E2ERow) -> str:
    head = (
        f"{r.workload:9s} {r.preset:13s} {r.precision:4s} "
        f"{'CL' if r.channels_last else '  '} {r.provider:12s}"
    )
    if r.ms_per_iter is None:
        return f"{head} -- {r.note}"
    vs = f" {r.vs_peer:5.2f}x peer" if r.vs_peer else ""
    return f"{head} {r.ms_per_iter:10.2f} ms {r.images_per_s:9.1f} img/s{vs} {r.note}"


def run_from_args(args: argparse.Namespace, command: str, log=print) -> list[results.E2ERow]:
    """Runs what ``args`` asks for, prints rows and the table, records results; returns rows."""
    device = harness.device_from_args(args)
    cuda = device.type == "cuda"
    if args.r1_every < 0:
        raise ValueError(f"--r1-every must be >= 0, got {args.r1_every}")
    batch = args.batch or (32 if cuda else 2)
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    quick = args.quick
    if args.reps is None:
        args.reps = 2 if quick else 12
    if args.warmup is None:
        args.warmup = 1 if quick else 3
    layouts = args.layout or ["nchw"]
    peak_tf = matmul_tflops(device, quick)
    log(
        f"# e2e on {device}: matmul ({'bf16' if cuda else 'fp32'}) {peak_tf:.2f} TFLOP/s, "
        f"batch {batch}, reps {args.reps}"
    )
    rows = []
    for workload in args.workload or workloads.WORKLOADS:
        default_presets = (
            (GEN_PRESETS_CUDA if workload == "generator" else TRAIN_PRESETS_CUDA)
            if cuda and not quick
            else ["tiny"]
        )
        default_dtypes = ["fp32", "fp16", "bf16"] if workload == "generator" else ["fp32", "bf16"]
        precisions = args.dtype or (default_dtypes if cuda and not quick else ["fp32"])
        if workload == "train" and "fp16" in precisions:
            log("# train: fp16 skipped (needs the trainer's loss scaler); fp32 and bf16 run")
            precisions = [p for p in precisions if p != "fp16"]
        providers = workloads.providers_for(workload, device, args.e2e_provider, quick)
        for preset in args.preset or default_presets:
            g_cfg, d_cfg = preset_configs(preset)
            if workload == "generator":
                gflop = flops.generator_flops(g_cfg) / 1e9
            else:
                gflop = flops.train_step_flops(g_cfg, d_cfg, args.r1_every) / 1e9
            for precision in precisions:
                for layout in layouts:
                    peer = None
                    for provider in providers:
                        row = measure(
                            workload, provider, preset, batch, precision, layout, device,
                            args, gflop, peak_tf,
                        )  # fmt: skip
                        if provider == "peer":
                            peer = row.images_per_s
                        if peer and row.images_per_s:
                            row.vs_peer = row.images_per_s / peer
                        log(_format(row))
                        rows.append(row)
    log("")
    log(results.markdown_table(rows))
    if args.no_save or not (cuda or args.save_cpu):
        if not cuda and not args.no_save:
            log("(CPU run: not recorded; --save-cpu records it)")
        return rows
    env = harness.environment(device)
    now = datetime.datetime.now(datetime.timezone.utc)
    env["run_id"] = now.strftime("%Y%m%dT%H%M%S") + "-" + env["git_sha"]
    out = Path(args.results_dir)
    slug = harness.device_slug(device) + "-e2e"
    results.append_csv(out / f"{slug}.csv", rows, env, peak_tf)
    results.append_markdown(out / f"{slug}.md", rows, env, peak_tf, command)
    results.plot(rows, out / f"{slug}.png")
    log(f"appended to {out / slug}.csv and .md")
    return rows
