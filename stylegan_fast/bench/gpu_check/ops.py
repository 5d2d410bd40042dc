"""The GPU check's op benchmark: every row of the H100 anchor tables (``shared/anchors-h100.md``:
bias_act, upsample2d, downsample2d and layer_epilogue at the seven StyleGAN layer shapes, N =
32, fp16 and fp32, forward and forward+backward), plus adain and noise_injection, for our
``cuda`` and ``triton`` kernels, the eager reference (``ref``) and ``torch.compile`` of the
reference (``compile``, a separate, later invocation: its compiles take seconds per cell).
channels_last cells (one shape per size class of the ``impl="auto"`` table) time our two
backends only: they feed the table's channels_last entries.

Inputs are drawn on the device (a 1024² batch is 4 GiB of fp32); the L2 is flushed before each
timed rep (``harness.time_reps``). Each cell gets 2 warm-up calls, then as many reps as fit in
~0.25 s (3 to 10): the eager reference's 1024² cells take 20-60 ms a call on an H100. Rows are
appended to ``ops.csv`` one by one, so a step stopped by its time limit keeps what it measured.
The cells run in order of importance (the anchor ops first, every shape and dtype of one op
before the next), and a step that runs out of budget says which cells it did not reach.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .. import BENCHES, harness
from ..shapes import channels_at, layer_shapes
from .budget import Budget

OPS_FILE = "ops.csv"
ANCHOR_OPS = ("layer_epilogue", "upsample2d", "downsample2d", "bias_act")
OTHER_OPS = ("adain", "noise_injection")
MODES = ("fwd+bwd", "fwd")
DTYPES = (torch.float16, torch.float32)
GPU_BATCH = 32  # the anchors' N
# channels_last cells: one layer per size class of the auto table (small, medium, large).
LAYOUT_RESOLUTIONS = (8, 64, 256)
# A dry run: two tiny layers (batch 1), one of them beyond the one-pass plane of the
# interpreter's plane-norm plans, so every plan kind runs.
DRY_SHAPES = (("4x8", (1, 4, 8, 8)), ("2x16", (1, 2, 16, 16)))
CHANNELS_LAST = "/cl"  # label suffix of channels_last cells
LOST_CONTEXT = ("illegal memory access", "CUDA error", "unspecified launch failure")


@dataclasses.dataclass(frozen=True)
class Cell:
    op: str
    label: str  # "CxH", plus CHANNELS_LAST for channels_last inputs
    shape: tuple[int, int, int, int]
    dtype: torch.dtype
    channels_last: bool


def cells(dry_run: bool, compile_only: bool = False) -> list[Cell]:
    """Every cell in the order they are measured. The compile provider gets the NCHW cells
    with the middle layers first (its cold compiles make it the first to run out of time)."""
    if dry_run:
        shapes = list(DRY_SHAPES)
        layout_shapes = shapes
    else:
        shapes = layer_shapes(GPU_BATCH, quick=False)
        layout_shapes = [
            (f"{channels_at(r)}x{r}", (GPU_BATCH, channels_at(r), r, r)) for r in LAYOUT_RESOLUTIONS
        ]
    if compile_only:
        middle_first = sorted(shapes, key=lambda s: abs(s[1][2] - 128))
        return [
            Cell(op, label, shape, dtype, False)
            for label, shape in middle_first
            for op in ANCHOR_OPS
            for dtype in DTYPES
        ]
    out = [
        Cell(op, label, shape, dtype, False)
        for op in ANCHOR_OPS + OTHER_OPS
        for label, shape in shapes
        for dtype in DTYPES
    ]
    out += [
        Cell(op, label + CHANNELS_LAST, shape, dtype, True)
        for op in ANCHOR_OPS + OTHER_OPS
        for label, shape in layout_shapes
        for dtype in DTYPES
    ]
    return out


def _channels_last(t):
    if isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[1] > 1:
        return (
            t.detach().contiguous(memory_format=torch.channels_last).requires_grad_(t.requires_grad)
        )
    return t


def _reps(call_once, device, target_seconds: float = 0.25) -> int:
    """Timed reps that fit ``target_seconds`` (3 to 10), from one synchronised call."""
    harness._sync(device)
    start = time.perf_counter()
    call_once()
    harness._sync(device)
    seconds = time.perf_counter() - start
    return max(3, min(10, int(target_seconds / max(seconds, 1e-6))))


def run(
    out: Path,
    device: torch.device,
    providers: Sequence[str],
    budget: Budget,
    copy_gbps: float,
    env: dict,
    dry_run: bool,
    log=print,
) -> int:
    """Measures every cell for ``providers`` until the budget runs out; appends rows to
    ``out/ops.csv``. Returns the number of cells not reached (0: complete)."""
    todo = cells(dry_run, compile_only=list(providers) == ["compile"])
    generator = torch.Generator(device=device).manual_seed(0)
    for index, cell in enumerate(todo):
        if not budget.allows(2.0):
            log(f"ops: budget spent; {len(todo) - index} of {len(todo)} cells not reached "
                f"(next: {cell.op} {cell.label} {cell.dtype})")  # fmt: skip
            return len(todo) - index
        cell_providers = [p for p in providers if p != "ref" or not cell.channels_last]
        rows = _measure_cell(cell, cell_providers, device, generator, copy_gbps, dry_run)
        for row in rows:
            harness.append_csv(out / OPS_FILE, [row], env, copy_gbps)
            log(harness._format_row(row))
        if any(row.note and any(t in row.note for t in LOST_CONTEXT) for row in rows):
            log("ops: the CUDA context is lost; stopping this step")
            return len(todo) - index
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


def _measure_cell(cell, providers, device, generator, copy_gbps, dry_run) -> list[harness.Row]:
    """Every provider in both modes on one set of inputs (one set alone for tensors of 2^28
    elements and more: 1 GiB of fp32 each, the L2 flush keeps reps honest without a
    second)."""
    bench = BENCHES[cell.op]
    big = cell.shape[0] * cell.shape[1] * cell.shape[2] * cell.shape[3] >= 2**28
    layout = _channels_last if cell.channels_last else None
    sets = 1 if big else 2
    inputs = harness.cell_inputs(
        bench, cell.label, cell.shape, cell.dtype, device, generator, sets, layout
    )
    first_inputs, first_grad = inputs.input_sets[0], inputs.grad_outs[0]
    rows = []
    for mode in MODES:
        for provider in providers:
            if provider == "compile":
                torch._dynamo.reset()  # a fresh, static compile per cell
            call = harness.provider_call(bench, provider, "eager" if dry_run else "inductor")
            try:
                # First call: JIT compiles, autotuning, allocator warm-up; then the rep count.
                harness._run_mode(call, first_inputs, mode, first_grad)
                reps = _reps(
                    lambda c=call, m=mode: harness._run_mode(c, first_inputs, m, first_grad),
                    device,
                )
            except Exception:  # time_one records the error as the row's note
                reps = 1
            rows.append(
                harness.time_one(
                    bench, call, provider, mode, inputs, copy_gbps, warmup=1, reps=reps
                )
            )
    return rows
