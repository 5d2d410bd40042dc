"""End-to-end benchmarks: generator inference and a full training step, for the eager peer
(plain PyTorch StyleGAN1, :mod:`.peer`), the eager and compiled reference model, and each
stylegan_fast backend; model FLOPs (:mod:`.flops`), records, README table and plot
(:mod:`.results`). ``benchmarks/bench_generator.py``, ``benchmarks/bench_train_step.py`` and
``stylegan-fast bench`` run :func:`main` / :func:`runner.run_from_args`."""

from __future__ import annotations

import argparse
import shlex
import sys

from . import flops, peer, results, runner, workloads


def main(argv=None, default_workloads=None) -> int:
    """Command-line entry of the benchmark scripts (``--help`` lists the options)."""
    parser = argparse.ArgumentParser(description="End-to-end StyleGAN benchmarks.")
    runner.add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.workload = args.workload or default_workloads
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *argv])
    try:
        runner.run_from_args(args, command)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


__all__ = ["flops", "main", "peer", "results", "runner", "workloads"]
