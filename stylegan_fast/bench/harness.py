"""Timing, bandwidth accounting and result files for the op benchmarks.

Each op module in this package describes its benchmark as an :class:`OpBench`: how to make
inputs for a StyleGAN layer shape, how to call the op with a given ``impl``, and the minimum
bytes each mode must move. :func:`run` times every (provider, mode, shape, dtype) on fresh
random inputs (never zeros), takes the median, and reports achieved GB/s and the % of the
measured copy bandwidth. Providers: ``ref`` (eager reference), ``compile`` (``torch.compile``
of the same reference), and each stylegan_fast backend available on the device.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .. import _backend

MODES = ("fwd", "fwd+bwd", "r1")


@dataclasses.dataclass(frozen=True)
class OpBench:
    """What one op's benchmark needs to know.

    make_inputs(shape, dtype, device, generator) -> list of tensors (or None), floating
    inputs that are differentiated flagged ``requires_grad``; call(inputs, impl) -> output;
    floor_bytes(inputs, output) -> ``(fwd, fwd+bwd)``: the bytes each input read once /
    output written once need in those modes (R1 has no clean floor).
    """

    op: str
    make_inputs: Callable
    call: Callable
    floor_bytes: Callable
    # Labelled shapes; the label is what tables show (e.g. "512x32" for C x H).
    shapes: Callable[[int, bool], list[tuple[str, tuple]]]
    # The registered op whose backends are timed, when the benchmark's name differs from it
    # (upsample2d and downsample2d both time the upfirdn2d kernels).
    backend_op: str | None = None

    def min_bytes(self, inputs, output, mode: str) -> int | None:
        """The bytes ``mode`` must move at the least; None for R1."""
        if mode == "r1":
            return None
        fwd, fwd_bwd = self.floor_bytes(inputs, output)
        return fwd if mode == "fwd" else fwd_bwd


def positional_call(op: Callable) -> Callable:
    """``call(inputs, impl)`` for an op that takes the inputs in order: ``op(*inputs,
    impl=impl)``."""
    return lambda inputs, impl: op(*inputs, impl=impl)


@dataclasses.dataclass
class Row:
    op: str
    provider: str
    mode: str
    shape: str
    dtype: str
    median_us: float | None
    gbps: float | None
    pct_of_copy: float | None
    peak_mem_mib: float | None
    note: str = ""


def add_repeatable(parser, *flags: str, choices=None, help: str, **kwargs) -> None:
    """A repeatable option of ``parser`` (or of an argument group): each use appends one value
    (one of ``choices`` when given) to a list; the list is None when the option is not given,
    so the caller picks the default (the device's, the op's) after parsing."""
    parser.add_argument(*flags, action="append", choices=choices, help=help, **kwargs)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the op and the end-to-end benchmarks alike (``stylegan-fast bench``
    gives them once, for both): the device, the timing and the result files."""
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--reps", type=int, default=None, help="timed reps (median reported)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch)")
    parser.add_argument(
        "--results-dir",
        default="benchmarks/results",
        help="where <device>.csv and .md (end-to-end: <device>-e2e.*) are appended",
    )
    parser.add_argument("--no-save", action="store_true", help="print only")


def device_from_args(args: argparse.Namespace) -> torch.device:
    """``--device`` (default: cuda when available), with ``--threads`` applied."""
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    return device


def nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def randn(*size, dtype: torch.dtype, device, generator: torch.Generator, offset: float = 0.0):
    """``offset`` + standard normal values of ``size`` in ``dtype`` on ``device``, drawn on
    ``generator``'s device: with a CUDA generator a 1024² StyleGAN batch (4 GiB of fp32) is
    drawn on the GPU in milliseconds instead of seconds on the CPU."""
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    values = torch.randn(size, generator=generator, device=generator.device)
    if offset:
        values += offset
    return values.to(device=device, dtype=dtype)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _L2Flusher:
    """Overwrites a buffer larger than the GPU's L2 before each timed rep, so every rep reads
    its inputs from device memory (as a real network's layers do)."""

    def __init__(self, device: torch.device):
        self.buffer = None
        if device.type == "cuda":
            self.buffer = torch.empty(256 * 2**20, dtype=torch.int8, device=device)

    def __call__(self):
        if self.buffer is not None:
            self.buffer.zero_()


def time_reps(fn: Callable[[int], object], device: torch.device, warmup: int, reps: int):
    """Median seconds of ``fn(rep)`` over ``reps`` runs after ``warmup`` runs.

    On CUDA each rep is bracketed by events (after an L2 flush); on CPU by perf_counter.
    """
    flush = _L2Flusher(device)
    for i in range(warmup):
        fn(i)
    _sync(device)
    times = []
    for i in range(reps):
        flush()
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(i)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, nbytes: int = 2**30, reps: int = 10) -> float:
    """Measured copy bandwidth in GB/s (bytes read + bytes written per second)."""
    n = nbytes // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    seconds = time_reps(lambda i: dst.copy_(src), device, warmup=3, reps=reps)
    return 2 * n * 4 / seconds / 1e9


def _run_mode(call, inputs, mode: str, grad_out):
    out = call(inputs)
    if mode == "fwd":
        return out
    wrt = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    if mode == "fwd+bwd":
        return torch.autograd.grad(out, wrt, grad_out)
    (g,) = torch.autograd.grad(out.sum(), wrt[0], create_graph=True)
    loss = out.float().square().mean() + g.float().square().sum()
    return torch.autograd.grad(loss, wrt)


def providers_for(op: str, device: torch.device, requested: Sequence[str] | None):
    """Providers to time: ref, compile, and every stylegan_fast backend that serves here."""
    names = ["ref", "compile"] + [b for b in _backend.available_backends(op, device) if b != "ref"]
    if requested:
        names = [p for p in names if p in requested]
    return names


@dataclasses.dataclass(frozen=True)
class CellInputs:
    """The inputs of one timed (shape, dtype) cell: ``input_sets`` rotated per rep, so no rep
    reuses the previous rep's data from cache, a random ``grad_outs`` entry per set, and the
    reference's output on the first set (the shape of the output, the bytes it takes)."""

    label: str
    dtype: torch.dtype
    device: torch.device
    input_sets: list
    grad_outs: list
    first_out: torch.Tensor


def cell_inputs(
    bench: OpBench, label: str, shape, dtype, device, generator, sets: int = 3, layout=None
) -> CellInputs:
    """``sets`` input sets of ``bench`` for ``shape``, each tensor passed through ``layout``
    (e.g. to channels_last) when given, and their gradients, drawn on ``generator``."""
    input_sets = []
    for _ in range(sets):
        inputs = bench.make_inputs(shape, dtype, device, generator)
        input_sets.append(inputs if layout is None else [layout(t) for t in inputs])
    out = bench.call(input_sets[0], "ref")
    grad_outs = [
        randn(out.shape, dtype=out.dtype, device=device, generator=generator) for _ in range(sets)
    ]
    return CellInputs(label, dtype, device, input_sets, grad_outs, out)


def run(
    bench: OpBench,
    device: torch.device,
    dtypes: Sequence[torch.dtype],
    modes: Sequence[str],
    providers: Sequence[str] | None,
    copy_gbps: float,
    quick: bool,
    batch: int,
    warmup: int,
    reps: int,
    log: Callable[[str], None] = print,
) -> list[Row]:
    """Times ``bench`` for every provider x mode x shape x dtype; returns the rows."""
    rows = []
    gen = torch.Generator(device=device).manual_seed(0)
    for label, shape in bench.shapes(batch, quick):
        for dtype in dtypes:
            cell = cell_inputs(bench, label, shape, dtype, device, gen)
            for provider in providers_for(bench.backend_op or bench.op, device, providers):
                call = provider_call(bench, provider)
                for mode in modes:
                    row = time_one(bench, call, provider, mode, cell, copy_gbps, warmup, reps)
                    log(_format_row(row))
                    rows.append(row)
    return rows


def provider_call(bench: OpBench, provider: str, compile_backend: str = "inductor"):
    """``call(inputs)`` for ``provider``: ``compile`` is ``torch.compile`` of the reference
    (``compile_backend="eager"`` traces without generating code: a CPU dry run's stand-in)."""
    if provider == "compile":
        # A fresh compiled function per provider run: compiling the reference is the baseline
        # a user gets from torch.compile without stylegan_fast. dynamic=False: after a second
        # shape Dynamo would otherwise recompile the same code with symbolic sizes, and the
        # anchors are static compiles.
        return torch.compile(
            lambda inputs: bench.call(inputs, "ref"), backend=compile_backend, dynamic=False
        )
    return lambda inputs: bench.call(inputs, provider)


def time_one(
    bench: OpBench, call, provider: str, mode: str, cell: CellInputs, copy_gbps, warmup, reps
) -> Row:
    """Times one cell: ``call`` in ``mode`` over the rotating ``cell.input_sets``; a provider
    that raises (torch.compile cannot differentiate twice) gives a row with the error as its
    note."""
    dtype_name = str(cell.dtype).replace("torch.", "")
    device, input_sets, grad_outs = cell.device, cell.input_sets, cell.grad_outs
    moved = bench.min_bytes(input_sets[0], cell.first_out, mode)

    def once(i):
        return _run_mode(call, input_sets[i % len(input_sets)], mode, grad_outs[i % len(grad_outs)])

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        seconds = time_reps(once, device, warmup, reps)
    except Exception as exc:  # e.g. torch.compile cannot do double backward
        note = (
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            if str(exc)
            else type(exc).__name__
        )
        return Row(bench.op, provider, mode, cell.label, dtype_name, None, None, None, None, note)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    gbps = moved / seconds / 1e9 if moved else None
    pct = 100 * gbps / copy_gbps if gbps is not None and copy_gbps else None
    return Row(bench.op, provider, mode, cell.label, dtype_name, seconds * 1e6, gbps, pct, peak)


def _format_row(r: Row) -> str:
    head = f"{r.op:16s} {r.provider:8s} {r.mode:8s} {r.shape:10s} {r.dtype:9s}"
    if r.median_us is None:
        return f"{head} -- {r.note}"
    gb = f"{r.gbps:8.1f} GB/s {r.pct_of_copy:5.1f}%" if r.gbps is not None else ""
    return f"{head} {r.median_us:10.1f} us {gb}"


# ---------------------------------------------------------------------------------------------
# Environment and result files


def device_slug(device: torch.device) -> str:
    """A file-name-safe device name: 'nvidia-h100-80gb-hbm3', 'cpu-<model>-<threads>t'."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu-{_cpu_model()}-{torch.get_num_threads()}t"
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: torch.device) -> dict:
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "not installed"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    from .. import __version__

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "threads": torch.get_num_threads() if device.type == "cpu" else "",
        "torch": torch.__version__,
        "triton": triton_version,
        "stylegan_fast": __version__,
        "git_sha": sha or "unknown",
        # CPU timings are only as good as the machine was quiet: say how busy it was.
        "load_average": " / ".join(f"{v:.1f}" for v in os.getloadavg())
        if hasattr(os, "getloadavg")
        else "",
    }


CSV_FIELDS = [
    "date",
    "git_sha",
    "device",
    "threads",
    "torch",
    "triton",
    "stylegan_fast",
    "op",
    "provider",
    "mode",
    "shape",
    "dtype",
    "median_us",
    "gbps",
    "pct_of_copy",
    "copy_gbps",
    "peak_mem_mib",
    "note",
]


def append_csv(path: Path, rows: Sequence[Row], env: dict, copy_gbps: float) -> None:
    """Appends rows (with the environment on every row) to ``path``, writing a header first
    when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        for r in rows:
            record = {**{k: env[k] for k in env if k in CSV_FIELDS}, **dataclasses.asdict(r)}
            record["copy_gbps"] = round(copy_gbps, 1)
            for key in ("median_us", "gbps", "pct_of_copy", "peak_mem_mib"):
                if record[key] is not None:
                    # Significant digits, not decimals: a slow CPU row's GB/s is below 0.01.
                    record[key] = float(f"{record[key]:.4g}")
            writer.writerow(record)


def markdown_table(rows: Sequence[Row]) -> str:
    """One table per (op, mode): shapes x dtypes down, providers across, median µs and % of
    the copy ceiling in each cell, plus the speed-up of each backend over eager."""
    out = []
    keys = sorted({(r.op, r.mode) for r in rows}, key=lambda k: (k[0], MODES.index(k[1])))
    for op, mode in keys:
        sub = [r for r in rows if r.op == op and r.mode == mode]
        providers = list(dict.fromkeys(r.provider for r in sub))
        out.append(f"**{op} — {mode}** (median µs; % of copy bandwidth; ×eager)\n")
        out.append("| shape | dtype | " + " | ".join(providers) + " |")
        out.append("|---|---|" + "---|" * len(providers))
        for shape, dtype in dict.fromkeys((r.shape, r.dtype) for r in sub):
            cells = {r.provider: r for r in sub if r.shape == shape and r.dtype == dtype}
            eager = cells.get("ref")
            line = []
            for p in providers:
                r = cells.get(p)
                line.append(_cell(r, eager))
            out.append(f"| {shape} | {dtype} | " + " | ".join(line) + " |")
        out.append("")
    return "\n".join(out)


def _cell(r: Row | None, eager: Row | None) -> str:
    if r is None:
        return ""
    if r.median_us is None:
        return "n/a"
    text = f"{r.median_us:.1f}" if r.median_us < 1000 else f"{r.median_us:.0f}"
    if r.pct_of_copy is not None:
        text += f" ({r.pct_of_copy:.0f}%)"
    if eager is not None and eager.median_us and r.provider != "ref":
        text += f" {eager.median_us / r.median_us:.2f}×"
    return text


def append_markdown(
    path: Path, rows: Sequence[Row], env: dict, copy_gbps: float, command: str
) -> None:
    """Appends a dated section (device, versions, command, copy bandwidth, tables)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = (
        f"## {env['date']} — {env['device']}"
        + (f", {env['threads']} threads" if env.get("threads") else "")
        + f"\n\ntorch {env['torch']}, triton {env['triton']}, stylegan_fast "
        f"{env['stylegan_fast']} ({env['git_sha']}); measured copy bandwidth "
        f"{copy_gbps:.1f} GB/s"
        + (
            f"; load average (1/5/15 min) before the run {env['load_average']}"
            if env.get("load_average") and env.get("threads")
            else ""
        )
        + f".\n\nCommand: `{command}`\n\n"
    )
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a") as f:
        if new:
            f.write(f"# Benchmark results: {env['device']}\n\n")
        f.write(head + markdown_table(rows) + "\n")
