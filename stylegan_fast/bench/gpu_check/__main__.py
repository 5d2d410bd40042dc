"""``python -m stylegan_fast.bench.gpu_check STEP --out DIR [--dry-run] ...``: one step of
``benchmarks/gpu_check.sh`` (see the package docstring). Exit status: 0 when the step did all
it set out to, 1 when it failed, 3 from ``build-status`` when ``_C`` must be built,
:data:`INCOMPLETE` when a benchmark step's budget ran out before its last row."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import environment
from .budget import Budget

INCOMPLETE = 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stylegan_fast.bench.gpu_check")
    parser.add_argument(
        "step", choices=("env", "build-status", "arch", "sanitize", "ops", "e2e", "summary")
    )
    parser.add_argument("--out", type=Path, help="the output folder (every step but arch)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, interpreter")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for this step")
    parser.add_argument(
        "--providers",
        default="cuda,triton,ref",
        help="ops: comma-separated providers (cuda, triton, cpp, ref, compile)",
    )
    parser.add_argument(
        "--race", action="store_true", help="sanitize: only the reductions (racecheck)"
    )
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.step == "arch":
        print(environment.arch_of_visible_gpu())
        return 0
    if args.step == "build-status":
        reusable, why = environment.build_status(args.dry_run)
        print(f"_C {'reusable' if reusable else 'must be built'}: {why}")
        return 0 if reusable else 3
    if args.out is None:
        raise SystemExit(f"{args.step}: --out DIR is required")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step == "env":
        env = environment.report(args.dry_run)
        environment.write(env, args.out)
        print("\n".join(environment.describe(env)))
        return 0
    if args.step == "summary":
        from . import summary

        return summary.run(args.out)
    device = environment.device_for(args.dry_run)
    env = environment.read(args.out)
    budget = Budget(args.budget)
    if args.step == "sanitize":
        from . import sanitize

        impls = ("cpp", "triton") if args.dry_run else ("cuda", "triton")
        count = sanitize.run(device, impls, race_only=args.race)
        print(f"sanitize: {count} cases match the float64 reference")
        return 0
    if args.step == "ops":
        from . import ops

        providers = [p for p in args.providers.split(",") if p]
        if args.dry_run:  # the CPU stands in for the GPU: cpp for cuda
            providers = ["cpp" if p == "cuda" else p for p in providers]
        missed = ops.run(
            args.out, device, providers, budget, float(env["copy_gbps"]), env, args.dry_run
        )
        return INCOMPLETE if missed else 0
    from . import e2e

    missed = e2e.run(args.out, device, budget, env, args.dry_run)
    return INCOMPLETE if missed else 0


if __name__ == "__main__":
    sys.exit(main())
