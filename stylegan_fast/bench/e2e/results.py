"""End-to-end result rows: CSV/Markdown records, the README table, the plot.

Records go to ``<results_dir>/<device>-e2e.csv`` (one row per measurement, environment on
every row, a ``run_id`` per invocation) and ``<device>-e2e.md`` (a dated section per run).
:func:`update_readme` rewrites the README's table between ``<!-- e2e-table -->`` and
``<!-- /e2e-table -->`` from the latest recorded run of a CSV.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path

README_BEGIN, README_END = "<!-- e2e-table -->", "<!-- /e2e-table -->"


@dataclasses.dataclass
class E2ERow:
    workload: str  # generator | train
    preset: str
    resolution: int
    batch: int
    precision: str  # fp32 | fp16 | bf16 (autocast)
    channels_last: bool
    provider: str
    r1_every: int | str  # train: R1 every k steps (0: none); generator: ""
    ms_per_iter: float | None
    images_per_s: float | None
    peak_mem_mib: float | None
    gflop_per_image: float
    tflops: float | None
    mfu_pct: float | None  # of the measured matmul rate (bf16 on CUDA)
    vs_peer: float | None  # images/s over the eager peer's, same workload/precision
    note: str = ""


ENV_FIELDS = ["run_id", "date", "git_sha", "device", "threads", "torch", "triton", "stylegan_fast"]
CSV_FIELDS = ENV_FIELDS + [f.name for f in dataclasses.fields(E2ERow)] + ["matmul_tflops"]
_ROUNDED = ("ms_per_iter", "images_per_s", "peak_mem_mib", "gflop_per_image", "tflops", "mfu_pct")


def append_csv(path: Path, rows: Sequence[E2ERow], env: dict, matmul_tflops: float) -> None:
    """Appends ``rows`` with the environment (``env`` must hold ``run_id`` and the versions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        for r in rows:
            record = {**{k: env.get(k, "") for k in ENV_FIELDS}, **dataclasses.asdict(r)}
            for key in (*_ROUNDED, "vs_peer"):
                if record[key] is not None:
                    record[key] = float(f"{record[key]:.4g}")
            record["matmul_tflops"] = float(f"{matmul_tflops:.4g}")
            writer.writerow(record)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _num(value) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


def _fmt(value, digits=3) -> str:
    value = _num(value)
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"


def _workload_label(r: dict) -> str:
    if r["workload"] == "generator":
        return "G inference"
    every = int(r["r1_every"] or 0)
    r1 = "no R1" if every == 0 else "R1 every step" if every == 1 else f"R1 every {every}"
    return f"train step D + G, {r1}"


def markdown_table(rows: Sequence[E2ERow | dict]) -> str:
    """One row per measurement: workload, resolution, precision, layout, provider, ms/iter,
    images/s, x peer, peak memory, TFLOP/s and MFU."""
    out = [
        "| workload | res | precision | layout | provider | ms / iter | images/s | × peer "
        "| peak alloc | TFLOP/s | MFU |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        r = dataclasses.asdict(r) if isinstance(r, E2ERow) else r
        cl = str(r["channels_last"]) in ("True", "true", "1")
        peak = _num(r["peak_mem_mib"])
        mem = "–" if peak is None else f"{peak / 1024:.2f} GiB"
        note = f" ({r['note']})" if r.get("note") else ""
        if _num(r["ms_per_iter"]) is None:
            cells = ["n/a" + note] + ["–"] * 5
        else:
            cells = [
                _fmt(r["ms_per_iter"]) + note,
                _fmt(r["images_per_s"], 4),
                _fmt(r["vs_peer"]),
                mem,
                _fmt(r["tflops"]),
                "–" if _num(r["mfu_pct"]) is None else f"{_num(r['mfu_pct']):.1f} %",
            ]
        res = f"{r['resolution']}²"
        prec = r["precision"] if r["precision"] == "fp32" else f"autocast {r['precision']}"
        layout = "channels_last" if cl else "NCHW"
        head = [_workload_label(r), res, prec, layout, r["provider"]]
        out.append("| " + " | ".join(head + cells) + " |")
    return "\n".join(out)


def append_markdown(
    path: Path, rows: Sequence[E2ERow], env: dict, matmul_tflops: float, command: str
) -> None:
    """Appends a dated section: device, versions, command, the matmul rate, the table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a") as f:
        if new:
            f.write(f"# End-to-end benchmark results: {env['device']}\n\n")
        f.write(
            f"## {env['date']} — {env['device']} (run {env['run_id']})\n\n"
            f"torch {env['torch']}, triton {env['triton']}, stylegan_fast "
            f"{env['stylegan_fast']} ({env['git_sha']}); measured matmul rate (bf16 on CUDA, "
            "fp32 on CPU) "
            f"{matmul_tflops:.1f} TFLOP/s (MFU is against it).\n\nCommand: `{command}`\n\n"
            + markdown_table(rows)
            + "\n\n"
        )


def latest_run(records: Sequence[dict]) -> list[dict]:
    """The rows of the last ``run_id`` in ``records`` (file order)."""
    if not records:
        return []
    last = records[-1]["run_id"]
    return [r for r in records if r["run_id"] == last]


def readme_table(csv_path: Path) -> str:
    """The README's end-to-end block from the latest run recorded in ``csv_path``."""
    rows = latest_run(read_csv(csv_path))
    if not rows:
        raise ValueError(f"{csv_path}: no end-to-end results recorded")
    r = rows[0]
    head = (
        f"Measured {r['date']} on {r['device']} (torch {r['torch']}, stylegan_fast "
        f"{r['stylegan_fast']}, {r['git_sha']}); batch {r['batch']}; MFU against the measured "
        f"matmul rate, {_fmt(r['matmul_tflops'])} TFLOP/s. Regenerate with "
        "`python benchmarks/e2e_readme.py`.\n\n"
    )
    return head + markdown_table(rows)


def update_readme(readme: Path, table: str) -> bool:
    """Replaces the text between the e2e markers of ``readme`` with ``table``; returns whether
    the file changed. Raises ValueError when the markers are missing or out of order."""
    text = readme.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(
            f"{readme}: needs the markers {README_BEGIN} ... {README_END} (in that order)"
        )
    new = text[: start + len(README_BEGIN)] + "\n" + table.strip() + "\n" + text[end:]
    if new != text:
        readme.write_text(new)
    return new != text


def plot(rows: Sequence[E2ERow | dict], path: Path) -> Path | None:
    """A horizontal bar chart of images/s per (workload, res, precision) and provider, written
    to ``path`` (PNG). Returns None, printing why, when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)")
        return None
    rows = [dataclasses.asdict(r) if isinstance(r, E2ERow) else r for r in rows]
    rows = [r for r in rows if _num(r["images_per_s"]) is not None]
    labels = [
        f"{_workload_label(r)} {r['resolution']}² {r['precision']}"
        f"{' CL' if str(r['channels_last']) == 'True' else ''} · {r['provider']}"
        for r in rows
    ]
    values = [_num(r["images_per_s"]) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) + 1.2))
    ax.barh(range(len(rows)), values)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("images / s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
