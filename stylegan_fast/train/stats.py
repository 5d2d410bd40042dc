"""Training progress output: ``stats.jsonl`` (always), TensorBoard scalars (when installed), a
tqdm progress bar, running means of per-step values, and sample-grid PNGs."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from .images import save_image_grid

__all__ = ["ProgressBar", "RunningMeans", "StatsWriter", "save_image_grid"]

STATS_FILE = "stats.jsonl"


def _plain_number(value) -> float | int | str:
    if isinstance(value, torch.Tensor):
        value = value.detach().float().item() if value.is_floating_point() else value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    value = float(value)
    # Strict JSON has no NaN/inf; keep them visible (a NaN loss matters) as strings.
    return value if math.isfinite(value) else str(value)


class RunningMeans:
    """Accumulates per-step scalars (tensors are summed on their device; nothing syncs until
    :meth:`means`), and returns their means over the interval."""

    def __init__(self):
        self._sums: dict[str, torch.Tensor | float] = {}
        self._counts: dict[str, int] = {}

    def add(self, values: Mapping[str, torch.Tensor | float]) -> None:
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float()
            self._sums[name] = self._sums.get(name, 0.0) + value
            self._counts[name] = self._counts.get(name, 0) + 1

    def means(self, reset: bool = True) -> dict[str, float]:
        result = {
            name: float(total) / self._counts[name]
            if not isinstance(total, torch.Tensor)
            else total.item() / self._counts[name]
            for name, total in self._sums.items()
        }
        if reset:
            self._sums.clear()
            self._counts.clear()
        return result


class StatsWriter:
    """Appends one JSON object per call to ``outdir/stats.jsonl`` (flushed each time, so a
    killed run keeps every line written), and mirrors the numbers to TensorBoard.

    Args:
        outdir: run directory (created).
        tensorboard: None: use TensorBoard when ``torch.utils.tensorboard`` imports;
            True: require it; False: never.
        enabled: False on ranks other than 0: every call does nothing.
        filename: the JSON-lines file in ``outdir`` (``metrics.jsonl`` for snapshot metrics).
    """

    def __init__(
        self,
        outdir: str | os.PathLike,
        tensorboard: bool | None = None,
        enabled: bool = True,
        filename: str = STATS_FILE,
    ):
        self.enabled = enabled
        self.path = Path(outdir) / filename
        self._tensorboard = None
        self._stream = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if tensorboard is not False:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                if tensorboard:
                    raise ImportError(
                        "TensorBoard logging requested but not installed: pip install tensorboard"
                    ) from exc
            else:
                self._tensorboard = SummaryWriter(log_dir=str(self.path.parent))
        self._stream = open(self.path, "a", encoding="utf-8")

    @property
    def tensorboard_enabled(self) -> bool:
        return self._tensorboard is not None

    def write(self, kimg: float, values: Mapping[str, object], step: int | None = None) -> None:
        """One line ``{"kimg": ..., "step": ..., "time": unix seconds, **values}``. Tensors
        and numbers become JSON numbers (NaN/inf as strings); strings pass through."""
        if not self.enabled:
            return
        record: dict[str, object] = {"kimg": float(kimg)}
        if step is not None:
            record["step"] = int(step)
        record["time"] = round(time.time(), 3)
        for name, value in values.items():
            record[name] = value if isinstance(value, str) else _plain_number(value)
        self._stream.write(json.dumps(record, allow_nan=False) + "\n")
        self._stream.flush()
        self.add_scalars(kimg, {k: v for k, v in record.items() if k not in ("step", "time")})

    def add_scalars(self, kimg: float, values: Mapping[str, object]) -> None:
        """Mirrors the numbers among ``values`` to TensorBoard (if it logs there) at
        ``kimg``, without a JSON line (for records another file holds)."""
        if not self.enabled or self._tensorboard is None:
            return
        global_step = round(float(kimg) * 1000)  # images seen: one axis for every run
        for name, value in values.items():
            if name != "kimg" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self._tensorboard.add_scalar(name, value, global_step)
        self._tensorboard.flush()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def read_stats(path: str | os.PathLike) -> list[dict]:
    """The records of a ``stats.jsonl`` file, in order."""
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


class ProgressBar:
    """A tqdm bar over kimg: position/total kimg, images per second, the latest losses, ETA.

    Args:
        total_kimg: the run's length in thousands of images.
        start_kimg: where a resumed run starts (the rate counts only images of this run).
        enabled: False on ranks other than 0.
    """

    def __init__(
        self, total_kimg: float, start_kimg: float = 0.0, enabled: bool = True, **tqdm_options
    ):
        self.enabled = enabled
        self._bar = None
        self._last_kimg = float(start_kimg)
        self._start_kimg = float(start_kimg)
        self._start_time = time.perf_counter()
        if not enabled:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=float(total_kimg),
            initial=float(start_kimg),
            unit="kimg",
            bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}{postfix}]",
            dynamic_ncols=True,
            **tqdm_options,
        )

    def images_per_second(self, kimg: float) -> float:
        elapsed = time.perf_counter() - self._start_time
        return (kimg - self._start_kimg) * 1000 / elapsed if elapsed > 0 else 0.0

    def update(self, kimg: float, values: Mapping[str, float] | None = None) -> None:
        """Moves the bar to ``kimg`` and shows ``img/s`` and ``values`` (e.g. losses)."""
        if self._bar is None:
            return
        postfix = {"img/s": f"{self.images_per_second(kimg):.1f}"}
        for name, value in (values or {}).items():
            number = value if isinstance(value, str) else _plain_number(value)
            postfix[name] = number if isinstance(number, str) else f"{number:.4g}"
        self._bar.set_postfix(postfix, refresh=False)
        # update() redraws at most every tqdm mininterval, which keeps logs of long runs short.
        self._bar.update(float(kimg) - self._last_kimg)
        self._last_kimg = float(kimg)

    @property
    def text(self) -> str:
        """The bar as it would be printed now ("" when disabled)."""
        return str(self._bar) if self._bar is not None else ""

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
