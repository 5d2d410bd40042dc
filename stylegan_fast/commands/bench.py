"""``stylegan-fast bench``: the op benchmarks, then the end-to-end ones, one table each.

``--ops-only`` / ``--e2e`` pick one of the two (default: both). Selecting ops (``--op`` or
``--mode``) without any end-to-end option (``--e2e``, ``--workload``, ``--preset``,
``--e2e-provider``, ``--layout``) runs the op benchmarks alone. ``--device``, ``--dtype``,
``--batch``, ``--quick``, ``--reps``, ``--warmup``, ``--threads``, ``--results-dir`` and
``--no-save`` apply to both; ``--provider`` names op providers, ``--e2e-provider`` model ones.
"""

from __future__ import annotations

import argparse
import copy
import shlex

from ..bench import add_arguments as add_op_arguments
from ..bench import e2e as e2e_bench
from ..bench import run_from_args as run_ops

HELP = "time the ops and the whole model (inference, train step) vs eager/compile"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_op_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--ops-only", action="store_true", help="only the op benchmarks")
    which.add_argument("--e2e", action="store_true", help="only the end-to-end benchmarks")
    e2e_bench.runner.add_arguments(parser, shared=False)


def _parts(args: argparse.Namespace) -> tuple[bool, bool]:
    """``(run ops, run end-to-end)``."""
    if args.ops_only:
        return True, False
    if args.e2e:
        return False, True
    e2e_chosen = any((args.workload, args.preset, args.e2e_provider, args.layout))
    ops_chosen = bool(args.op or args.mode)
    if ops_chosen and not e2e_chosen:
        return True, False
    return True, True


def run(args: argparse.Namespace) -> int:
    command = "stylegan-fast " + " ".join(shlex.quote(a) for a in getattr(args, "argv", []))
    ops, end_to_end = _parts(args)
    if end_to_end and args.r1_every < 0:  # checked before minutes of op benchmarks
        raise ValueError(f"--r1-every must be >= 0, got {args.r1_every}")
    if ops:
        run_ops(args, command)
    if end_to_end:
        print()
        # The e2e runner fills in its own defaults (reps, warmup); the ops' stay untouched.
        e2e_bench.runner.run_from_args(copy.copy(args), command)
    return 0
