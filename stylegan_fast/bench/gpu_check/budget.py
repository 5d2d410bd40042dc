"""A step's time budget: the shell gives each phase a hard limit (``timeout``); the step stops
starting new measurements a little before it, so it ends with its results written instead of
being killed mid-row."""

from __future__ import annotations

import time


class Budget:
    """``seconds`` from construction; :meth:`left` counts down, never below 0."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self._deadline = time.monotonic() + self.seconds

    def left(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def allows(self, estimate: float = 0.0) -> bool:
        """Whether a piece of work estimated at ``estimate`` seconds still fits."""
        return self.left() > estimate
