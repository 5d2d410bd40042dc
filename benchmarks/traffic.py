"""Memory traffic and launch counts of the Triton plans, counted by the Triton interpreter.

    python benchmarks/traffic.py             # benchmarks/results/traffic.md (~7 min, 2 cores)
    python benchmarks/traffic.py --dispatch  # kernels per G forward / train step at 256²

The first form runs every op at every StyleGAN plane size with CPU tensors posing as an H100
(``stylegan_fast.bench.op_traffic``) and writes the table; rerun it whenever a Triton plan
changes, then revisit ``op_traffic.MODELS`` where the model check reports a mismatch. The
second counts dispatched ops per G forward and per training step on the ``auto`` path
(``stylegan_fast.bench.dispatch``). No GPU needed; triton must be installed.
"""

from __future__ import annotations

import os

# Before triton is imported (stylegan_fast imports it lazily, but be first regardless).
os.environ["TRITON_INTERPRET"] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def _traffic(args) -> int:
    import triton

    from stylegan_fast.bench import op_traffic

    ops = args.op or list(op_traffic.OPS)
    sweep = op_traffic.default_sweep(full=args.full, ops=ops)
    if args.plane:
        sweep = [(case, passes) for case, passes in sweep if case.plane in args.plane]
    print(f"{len(sweep)} cases", file=sys.stderr)
    start = time.perf_counter()
    results = op_traffic.run(sweep, progress=lambda line: print(line, file=sys.stderr))
    minutes = (time.perf_counter() - start) / 60
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/traffic.py", *sys.argv[1:]])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = "\n".join(
        [
            "# Memory traffic of the Triton plans (interpreter-counted)",
            "",
            f"Made by `{command}` on {now}: torch {torch.__version__}, triton "
            f"{triton.__version__}, Python {platform.python_version()}, stylegan_fast "
            f"{args.revision or _git_sha()}; {minutes:.1f} min on a {os.cpu_count()}-core CPU "
            f"({platform.processor() or platform.machine()}), one process. No GPU is involved.",
        ]
    )
    text = op_traffic.markdown(results, header)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out} ({minutes:.1f} min)", file=sys.stderr)
    problems = op_traffic.mismatches(results)
    for line in problems:
        print(f"model mismatch: {line}", file=sys.stderr)
    return 1 if (args.check and problems) else 0


def _dispatch(args) -> int:
    from stylegan_fast.bench import dispatch

    torch.set_num_threads(args.threads)
    forward = dispatch.generator_forward(args.preset, batch=args.g_batch)
    print(dispatch.report(forward))
    print()
    step = dispatch.train_step(args.preset, batch=args.batch)
    print(dispatch.report(step))
    print()
    tensors, foreach, names = dispatch.adam_foreach(args.preset)
    print(
        f"Adam(foreach=True), the CUDA default, over G's and D's {tensors} parameter tensors: "
        f"{foreach} dispatched ops per step ({', '.join(f'{n} {k}' for k, n in names.items())})"
    )
    # A GPU step: the CPU loop's optimizer ops replaced by the foreach ops of the two
    # optimizers (G's and D's; each multi-tensor op may launch a few kernels), plus the Triton
    # launches of our ops' GPU plans.
    optimizer = dispatch.optimizer_kernels(step)
    gpu = step.aten_kernels - optimizer + 2 * foreach + step.triton_kernel_launches()
    print(
        f"Train step on a GPU (Triton path), estimated: {step.aten_kernels} aten kernels - "
        f"{optimizer} of the CPU Adam loop + 2 x {foreach} foreach ops + "
        f"{step.triton_kernel_launches()} Triton launches = ~{gpu} kernel launches"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dispatch", action="store_true", help="count kernels per G forward "
                        "and train step instead (auto path)")  # fmt: skip
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/traffic.md"))
    parser.add_argument("--op", action="append", help="only this op (repeatable)")
    parser.add_argument("--plane", action="append", type=int, help="only this plane size")
    parser.add_argument("--full", action="store_true", help="every plane in every layout and "
                        "dtype with every pass (over an hour)")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="exit 1 on a model mismatch")
    parser.add_argument("--revision", help="the revision measured, for the header (default: "
                        "git rev-parse of this checkout)")  # fmt: skip
    parser.add_argument("--preset", default="stylegan-256", help="--dispatch: model preset")
    parser.add_argument("--batch", type=int, default=2, help="--dispatch: train-step batch")
    parser.add_argument("--g-batch", type=int, default=2, help="--dispatch: G forward batch")
    parser.add_argument("--threads", type=int, default=2, help="--dispatch: CPU threads")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    return _dispatch(args) if args.dispatch else _traffic(args)


if __name__ == "__main__":
    sys.exit(main())
