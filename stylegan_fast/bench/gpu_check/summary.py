"""The GPU check's last step: ``summary.md`` (every measured cell beside the H100 anchors), the
``impl="auto"`` preference table rewritten from the measurements (``auto_preferences.json``,
adopted by copying it over ``stylegan_fast/auto_preferences.json``), and a table of at most
60 lines printed last.

Printed op cells read ``pct/xE/xC``: the best of our backends as % of the measured copy
bandwidth over the op's minimum bytes, then its speed-up over the eager reference and over
``torch.compile`` of the reference, measured in the same run ("-" where that provider was
not timed). ``summary.md`` adds each provider's µs and the anchor table's best peer
(``benchmarks/anchors_h100.csv``: shared/anchors-h100.md, one H100 80GB HBM3, 2026-11-22,
torch 2.11.0+cu130, Triton 3.6.0, N = 32, L2 flushed; StyleGAN1's nearest+blur ``sg1_*``
variants left out, they compute another function).
"""

from __future__ import annotations

import csv
import datetime
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ... import _preferences
from ..e2e import results as e2e_results
from . import environment
from .e2e import E2E_FILE
from .ops import ANCHOR_OPS, CHANNELS_LAST, MODES, OPS_FILE, OTHER_OPS

SUMMARY_FILE = "summary.md"
PHASES_FILE = "phases.tsv"
PREFERENCES_FILE = "auto_preferences.json"
ANCHORS = Path(__file__).resolve().parents[3] / "benchmarks" / "anchors_h100.csv"
MAX_PRINTED_LINES = 60
# Our kernel backends as the op rows name them (cpp stands in for cuda on a CPU dry run).
OURS = ("cuda", "triton", "cpp")
DTYPE_NAMES = {"float32": "fp32", "float16": "fp16"}
# End-to-end anchors (images/s, batch 32, H100): rosinality/style-based-gan-pytorch.
E2E_ANCHORS = {
    ("generator", "stylegan-256", "fp32"): (1315.0, "peer eager; 3382 compiled"),
    ("generator", "stylegan-256", "fp16"): (1462.0, "peer autocast fp16"),
    ("generator", "stylegan-1024", "fp32"): (349.0, "peer eager"),
    ("train", "stylegan-256", "fp32"): (62.2, "peer eager fp32"),
}


def _read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(value) -> float | None:
    return None if value in (None, "") else float(value)


def _shape_order(label: str) -> tuple[int, int]:
    c, h = label.split("/")[0].split("x")
    return int(h), int(c)


def index_ops(rows: Sequence[dict]) -> dict[tuple[str, str, str, str], dict[str, float]]:
    """(op, mode, dtype, shape label) -> provider -> median µs (timed rows only)."""
    out: dict = defaultdict(dict)
    for r in rows:
        us = _num(r.get("median_us"))
        if us is not None:
            out[(r["op"], r["mode"], r["dtype"], r["shape"])][r["provider"]] = us
    return out


def best_ours(cell: dict[str, float]) -> tuple[str, float] | None:
    timed = [(cell[p], p) for p in OURS if p in cell]
    return (min(timed)[1], min(timed)[0]) if timed else None


def anchor_best(anchors: Sequence[dict]) -> dict[tuple[str, str, str, str], tuple[str, float]]:
    """(op, mode, dtype, shape) -> (provider, µs) of the fastest anchor peer."""
    out: dict = {}
    for a in anchors:
        if a["provider"].startswith("sg1_"):
            continue
        key = (a["op"], a["mode"], a["dtype"], a["shape"])
        us = float(a["median_us"])
        if key not in out or us < out[key][1]:
            out[key] = (a["provider"], us)
    return out


def _pct(us: float, row_bytes: float | None, copy_gbps: float) -> str:
    if not row_bytes or not copy_gbps:
        return "?"
    return f"{100 * row_bytes / (us * 1e-6) / 1e9 / copy_gbps:.0f}%"


def _ratio(base: float | None, ours: float) -> str:
    return "-" if base is None else f"{base / ours:.1f}"


def op_lines(rows: Sequence[dict], copy_gbps: float) -> list[str]:
    """The printed op table: one line per (op, mode, dtype), one ``pct/xE/xC`` cell per NCHW
    shape."""
    cells = index_ops(rows)
    min_bytes = _min_bytes_by_cell(rows)
    shapes = sorted({k[3] for k in cells if CHANNELS_LAST not in k[3]}, key=_shape_order)
    if not shapes:
        return ["ops: no rows measured"]
    lines = [
        "ops, NCHW: best of ours as % of copy bandwidth / x eager / x torch.compile",
        f"{'op':16s}{'mode':8s}{'dt':5s}" + "".join(f"{s:>15s}" for s in shapes),
    ]
    for op in ANCHOR_OPS + OTHER_OPS:
        for mode in MODES:
            for dtype in ("float32", "float16"):
                texts = []
                for shape in shapes:
                    cell = cells.get((op, mode, dtype, shape), {})
                    best = best_ours(cell)
                    if best is None:
                        texts.append("n/t")
                        continue
                    pct = _pct(best[1], min_bytes.get((op, mode, dtype, shape)), copy_gbps)
                    texts.append(
                        f"{pct}/{_ratio(cell.get('ref'), best[1])}/"
                        f"{_ratio(cell.get('compile'), best[1])}"
                    )
                if any(t != "n/t" for t in texts):
                    lines.append(
                        f"{op:16s}{mode:8s}{DTYPE_NAMES[dtype]:5s}"
                        + "".join(f"{t:>15s}" for t in texts)
                    )
    return lines


def _min_bytes_by_cell(rows: Sequence[dict]) -> dict:
    """Minimum bytes per cell, recovered from a timed row's GB/s x time."""
    out = {}
    for r in rows:
        gbps, us = _num(r.get("gbps")), _num(r.get("median_us"))
        if gbps is not None and us is not None:
            out[(r["op"], r["mode"], r["dtype"], r["shape"])] = gbps * 1e9 * us * 1e-6
    return out


def e2e_lines(rows: Sequence[dict]) -> list[str]:
    if not rows:
        return ["end to end: no rows measured"]
    lines = [f"end to end (batch {rows[0]['batch']}): ms/iter, images/s, x peer (same run)"]
    for r in rows:
        head = f"  {r['workload']:9s} {r['preset']:13s} {r['precision']:4s} {r['provider']:10s}"
        ms, ips = _num(r["ms_per_iter"]), _num(r["images_per_s"])
        if ms is None:
            lines.append(f"{head} -- {r['note'][:70]}")
            continue
        anchor = E2E_ANCHORS.get((r["workload"], r["preset"], r["precision"]))
        vs = _num(r.get("vs_peer"))
        lines.append(
            f"{head} {ms:9.2f} ms {ips:8.1f} img/s"
            + (f"  x{vs:.2f} peer" if vs else "")
            + (f"  (anchor {anchor[0]:g} img/s, {anchor[1]})" if anchor else "")
        )
    return lines


def phase_lines(out: Path) -> list[str]:
    path = out / PHASES_FILE
    if not path.exists():
        return ["phases: no record"]
    lines = ["phases (status, seconds / limit):"]
    for line in path.read_text().splitlines():
        name, status, seconds, limit, *note = line.split("\t")
        lines.append(f"  {name:14s} {status:9s} {seconds:>4s} / {limit:>4s} s  {' '.join(note)}")
    return lines


def markdown(env: dict, op_rows: Sequence[dict], e2e_rows: Sequence[dict], anchors) -> str:
    """Every op cell (each provider's µs and %, ours vs eager, compile and the anchor best)
    and the end-to-end table."""
    cells = index_ops(op_rows)
    min_bytes = _min_bytes_by_cell(op_rows)
    best_anchor = anchor_best(anchors)
    copy = float(env.get("copy_gbps") or 0)
    providers = [p for p in ("cuda", "triton", "cpp", "ref", "compile")
                 if any(p in c for c in cells.values())]  # fmt: skip
    out = [
        f"# GPU check: {env.get('device')}",
        "",
        *[f"- {line}" for line in environment.describe(env)],
        "",
        "Cells: median µs (% of the measured copy bandwidth over the op's minimum bytes). "
        "`best`: the faster of our backends; × columns: its speed-up over that provider "
        "(anchor: the fastest peer of shared/anchors-h100.md, an H100 run of 2026-11-22).",
        "",
    ]
    for op in ANCHOR_OPS + OTHER_OPS:
        for mode in MODES:
            keys = sorted(
                (k for k in cells if k[0] == op and k[1] == mode),
                key=lambda k: (k[2], CHANNELS_LAST in k[3], _shape_order(k[3])),
            )
            if not keys:
                continue
            out += [f"**{op} — {mode}**", ""]
            out.append(
                "| shape | dtype | "
                + " | ".join(providers)
                + " | best | × eager | × compile | anchor best | × anchor |"
            )
            out.append("|---|---|" + "---|" * (len(providers) + 5))
            for key in keys:
                cell = cells[key]
                texts = [
                    f"{cell[p]:.1f} ({_pct(cell[p], min_bytes.get(key), copy)})"
                    if p in cell else "" for p in providers
                ]  # fmt: skip
                best = best_ours(cell)
                anchor = best_anchor.get(key)
                if best is None:
                    extra = ["", "", "", "", ""]
                else:
                    extra = [
                        best[0],
                        _ratio(cell.get("ref"), best[1]),
                        _ratio(cell.get("compile"), best[1]),
                        f"{anchor[0]} {anchor[1]:g}" if anchor else "",
                        _ratio(anchor[1] if anchor else None, best[1]),
                    ]
                out.append(f"| {key[3]} | {DTYPE_NAMES.get(key[2], key[2])} | "
                           + " | ".join(texts + extra) + " |")  # fmt: skip
            out.append("")
    out += ["**end to end**", "", e2e_results.markdown_table(e2e_rows) if e2e_rows else "none", ""]
    return "\n".join(out)


def measured_preferences(
    op_rows: Sequence[dict], env: dict, base: _preferences.Table
) -> _preferences.Table:
    """``base`` with every (op, layout, size class) entry that has cells timed for both
    ``cuda`` and ``triton`` replaced by the measured order: the backend with the smaller total
    median over those cells (fwd and fwd+bwd, fp16 and fp32, every shape of the class) first."""
    from ...bench import BENCHES

    totals: dict = defaultdict(lambda: {"cuda": 0.0, "triton": 0.0, "cells": 0})
    for key, cell in index_ops(op_rows).items():
        op, _mode, _dtype, label = key
        if "cuda" not in cell or "triton" not in cell:
            continue
        channels, height = (int(v) for v in label.split("/")[0].split("x"))
        # Upsampling labels name the output; the op's input x (what auto keys on) is half.
        in_height = height // 2 if op == "upsample2d" else height
        size = _preferences.size_class_of_plane(in_height * in_height)
        layout = "channels_last" if CHANNELS_LAST in label else "nchw"
        table_op = BENCHES[op].backend_op or op
        total = totals[(table_op, layout, size)]
        total["cuda"] += cell["cuda"]
        total["triton"] += cell["triton"]
        total["cells"] += 1
    table = dict(base)
    date = env.get("date", datetime.date.today().isoformat())
    for key, total in totals.items():
        order = ("cuda", "triton") if total["cuda"] <= total["triton"] else ("triton", "cuda")
        source = (
            f"measured on {env.get('device')}, {date} (gpu_check, {env.get('git_sha')}): "
            f"cuda {total['cuda']:.0f} us vs triton {total['triton']:.0f} us over "
            f"{total['cells']} cells"
        )
        table[key] = _preferences.Preference(order, source)
    return table


def run(out: Path, log=print) -> int:
    env = environment.read(out)
    op_rows = _read_csv(out / OPS_FILE)
    e2e_rows = _read_csv(out / E2E_FILE)
    anchors = _read_csv(ANCHORS)
    (out / SUMMARY_FILE).write_text(markdown(env, op_rows, e2e_rows, anchors))
    table = measured_preferences(op_rows, env, _preferences.TABLE)
    comment = (
        "impl='auto' on CUDA tensors, rewritten by benchmarks/gpu_check.sh from its "
        f"measurements on {env.get('device')}; adopt it by copying it over "
        "stylegan_fast/auto_preferences.json"
    )
    (out / PREFERENCES_FILE).write_text(_preferences.dump(table, comment))
    changed = sum(1 for k, v in table.items() if _preferences.TABLE.get(k) != v)
    lines = [
        f"=== stylegan_fast GPU check: {env.get('device')} ===",
        *environment.describe(env),
        *phase_lines(out),
        *op_lines(op_rows, float(env.get("copy_gbps") or 0)),
        *e2e_lines(e2e_rows),
        f"auto preference entries measured: {changed} of {len(table)} "
        f"(written to {PREFERENCES_FILE}); full tables in {SUMMARY_FILE}",
    ]
    if len(lines) > MAX_PRINTED_LINES:
        lines = lines[: MAX_PRINTED_LINES - 1] + [f"... ({SUMMARY_FILE} has the rest)"]
    log("\n".join(lines))
    return 0
