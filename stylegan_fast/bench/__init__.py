"""Op benchmarks: ``stylegan-fast bench`` and ``benchmarks/bench_<op>.py`` both run
:func:`main`. One module per op (``bias_act.py``, ...) describes its inputs, call and minimum
bytes; ``harness.py`` times them and writes ``benchmarks/results/<device>.{csv,md}``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from . import adain, bias_act, harness, layer_epilogue, noise_injection, upfirdn2d

BENCHES = {
    b.op: b
    for b in (
        bias_act.BENCH,
        noise_injection.BENCH,
        adain.BENCH,
        layer_epilogue.BENCH,
        upfirdn2d.UPSAMPLE,
        upfirdn2d.DOWNSAMPLE,
    )
}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def add_arguments(parser: argparse.ArgumentParser, default_ops=None) -> None:
    harness.add_repeatable(
        parser, "--op", choices=sorted(BENCHES), help="op to benchmark (repeatable; default: all)"
    )
    harness.add_repeatable(
        parser,
        "--dtype",
        choices=sorted(DTYPES),
        help="repeatable; default fp32, fp16, bf16 on CUDA and fp32 on CPU",
    )
    harness.add_repeatable(
        parser, "--mode", choices=harness.MODES, help="repeatable; default: all of fwd, fwd+bwd, r1"
    )
    harness.add_repeatable(
        parser,
        "--provider",
        help="ref, compile, cpp, cuda, triton (repeatable; default: all "
        "available, without compile on CPU --quick)",
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="N (default 32 on CUDA, 4 on CPU, 2 with --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="three small layers, few reps: under a minute on a 2-core CPU",
    )
    harness.add_run_arguments(parser)
    parser.set_defaults(default_ops=default_ops)


def run_from_args(args: argparse.Namespace, command: str) -> list[harness.Row]:
    device = harness.device_from_args(args)
    on_cpu = device.type == "cpu"
    ops = args.op or args.default_ops or sorted(BENCHES)
    dtypes = [DTYPES[d] for d in (args.dtype or (["fp32"] if on_cpu else ["fp32", "fp16", "bf16"]))]
    modes = args.mode or list(harness.MODES)
    providers = args.provider
    if providers is None and on_cpu and args.quick:
        # Inductor compiles C++ on the CPU: ~20 s per graph, more than the whole quick run.
        providers = ["ref", "cpp", "triton", "cuda"]
    batch = args.batch or (2 if args.quick else 4 if on_cpu else 32)
    reps = args.reps or (5 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    copy_gbps = harness.copy_bandwidth(device, nbytes=2**26 if args.quick else 2**30)
    print(f"# {device}: copy bandwidth {copy_gbps:.1f} GB/s, batch {batch}, reps {reps}")
    rows = []
    for op in ops:
        rows += harness.run(
            BENCHES[op],
            device,
            dtypes,
            modes,
            providers,
            copy_gbps,
            args.quick,
            batch,
            warmup,
            reps,
        )
    print()
    print(harness.markdown_table(rows))
    if not args.no_save:
        env = harness.environment(device)
        out = Path(args.results_dir)
        slug = harness.device_slug(device)
        harness.append_csv(out / f"{slug}.csv", rows, env, copy_gbps)
        harness.append_markdown(out / f"{slug}.md", rows, env, copy_gbps, command)
        print(f"appended to {out / slug}.csv and .md")
    return rows


def main(argv=None, default_ops=None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark stylegan_fast ops.")
    add_arguments(parser, default_ops)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    run_from_args(args, "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *argv]))
    return 0
