"""Small helpers every layer of the package shares, defined once: how an on/off environment
variable is read, whether Triton runs on the interpreter, and the precision kernels accumulate
in.

Imports only ``os`` and torch, so that any module may import it first: ``_library`` and
``_backend`` do while ``stylegan_fast.ops`` itself is still being imported.
"""

from __future__ import annotations

import os

import torch

_TRUE = ("1", "true", "yes", "on")


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to 1, true, yes or on (any case)."""
    return os.environ.get(name, "0").lower() in _TRUE


def triton_interpreting() -> bool:
    """Whether Triton kernels run on the interpreter (``TRITON_INTERPRET=1``): Triton reads the
    variable when it is first imported, so its value now is the one in force only if nothing
    has imported triton since it changed."""
    return env_flag("TRITON_INTERPRET")


def statistics_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype kernels accumulate in, and return per-plane statistics (mean, rstd) and
    partial sums in, for inputs of ``dtype``: float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
