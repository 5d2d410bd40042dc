"""The order in which ``impl="auto"`` tries the backends on CUDA tensors: one table, per op,
memory layout and size class, kept in one file (``auto_preferences.json`` beside this module)
that the GPU check's benchmark rewrites from measurements (``benchmarks/gpu_check.sh``).

Each entry carries its source: ``predicted: <why>`` until a GPU run measures it, then
``measured: <GPU>, <date>, <what was compared>``. ``stylegan-fast info`` prints the table.

Keys, derived from the op's main input ``x`` by :func:`layout_of` and :func:`size_class`:

- layout: ``channels_last`` when the kernels compute in channels_last (see
  ``_library.kernel_memory_format``), else ``nchw`` (contiguous, strided, or not 4-D);
- size: the plane ``H * W`` of a 4-D ``x`` (1 for other ranks): ``small`` up to 32² (every
  provider is CPU-launch-bound there on an H100: a fwd+bwd call costs 0.35-1.3 ms of launch
  time against 14-250 µs of GPU work, shared/anchors-h100.md), ``medium`` up to 128² (the
  planes the adain/layer_epilogue kernels hold on chip), ``large`` above.

Plain Python and JSON: read once at import, then a dict lookup per call, which
``torch.compile(fullgraph=True)`` traces.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import torch

from . import _library

PREFERENCES_FILE = Path(__file__).with_name("auto_preferences.json")
LAYOUTS = ("nchw", "channels_last")
SIZE_CLASSES = ("small", "medium", "large")
# Upper plane sizes (H * W) of the size classes but the last.
SIZE_LIMITS = {"small": 32 * 32, "medium": 128 * 128}
GPU_BACKENDS = ("cuda", "triton")


@dataclasses.dataclass(frozen=True)
class Preference:
    """One table entry: the backends to try, fastest first, and where that order came from."""

    order: tuple[str, ...]
    source: str


Table = dict[tuple[str, str, str], Preference]  # (op, layout, size class) -> preference


def layout_of(x: torch.Tensor) -> str:
    """``"channels_last"`` or ``"nchw"``: the layout the kernels compute ``x`` in."""
    return "channels_last" if _library.kernel_memory_format(x) == torch.channels_last else "nchw"


def size_class(x: torch.Tensor) -> str:
    """``small``, ``medium`` or ``large`` by the plane ``H * W`` of ``x: [N, C, H, W]``
    (other ranks are ``small``: bias_act on ``[N, C]`` activations of a dense layer)."""
    return size_class_of_plane(x.shape[-2] * x.shape[-1] if x.dim() == 4 else 1)


def size_class_of_plane(plane: int) -> str:
    """The size class of a plane of ``plane = H * W`` pixels."""
    for name, limit in SIZE_LIMITS.items():
        if plane <= limit:
            return name
    return SIZE_CLASSES[-1]


def load(path: Path = PREFERENCES_FILE) -> Table:
    """Reads and validates a preference file. Raises ValueError naming what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the auto preference table {path}: {exc}") from exc
    entries = data.get("cuda") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected an object with a 'cuda' table")
    table: Table = {}
    for op, layouts in entries.items():
        for layout in LAYOUTS:
            for size in SIZE_CLASSES:
                where = f"{path}: cuda.{op}.{layout}.{size}"
                try:
                    entry = layouts[layout][size]
                    order, source = tuple(entry["order"]), str(entry["source"])
                except (KeyError, TypeError) as exc:
                    raise ValueError(f"{where}: missing or malformed ({exc!r})") from exc
                if not order or set(order) - set(GPU_BACKENDS) or len(set(order)) != len(order):
                    raise ValueError(
                        f"{where}: order must list distinct backends of {GPU_BACKENDS}, "
                        f"got {list(order)}"
                    )
                table[(op, layout, size)] = Preference(order, source)
    return table


def dump(table: Mapping[tuple[str, str, str], Preference], comment: str) -> str:
    """The file text of ``table``: one entry per line, so a rewrite diffs entry by entry."""
    ops = sorted({op for op, _, _ in table})
    lines = ["{", f'  "comment": {json.dumps(comment)},', '  "cuda": {']
    for i, op in enumerate(ops):
        lines.append(f"    {json.dumps(op)}: {{")
        for j, layout in enumerate(LAYOUTS):
            lines.append(f"      {json.dumps(layout)}: {{")
            for k, size in enumerate(SIZE_CLASSES):
                p = table[(op, layout, size)]
                entry = json.dumps({"order": list(p.order), "source": p.source})
                comma = "," if k < len(SIZE_CLASSES) - 1 else ""
                lines.append(f"        {json.dumps(size)}: {entry}{comma}")
            lines.append("      }" + ("," if j < len(LAYOUTS) - 1 else ""))
        lines.append("    }" + ("," if i < len(ops) - 1 else ""))
    lines += ["  }", "}", ""]
    return "\n".join(lines)


TABLE: Table = load()
