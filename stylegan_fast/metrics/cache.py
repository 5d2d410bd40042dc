"""The feature-statistics cache: one ``.npz`` per (data, feature network, image count,
resolution, ...) in a directory the user picks, named by a hash of those, written atomically.

Each file also stores its key as JSON, and a file whose stored key differs from the one asked
for (a hash collision, a hand-copied file) or that cannot be read is treated as a miss and
rewritten, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings

import numpy as np

__all__ = ["CACHE_FORMAT", "cache_file", "load_cached", "save_cached"]

# Bumped whenever what is stored, or how it is computed, changes: old files then miss.
CACHE_FORMAT = 1


def _key_json(key: dict) -> str:
    return json.dumps({"cache_format": CACHE_FORMAT, **key}, sort_keys=True, default=str)


def cache_file(cache_dir: str | os.PathLike, key: dict) -> str:
    """The path of the entry for ``key`` (a JSON-serialisable dict) in ``cache_dir``."""
    digest = hashlib.sha256(_key_json(key).encode()).hexdigest()[:32]
    return os.path.join(os.fspath(cache_dir), f"stats-{digest}.npz")


def load_cached(cache_dir: str | os.PathLike, key: dict) -> dict[str, np.ndarray] | None:
    """The arrays stored for ``key``, or None when there is no valid entry."""
    path = cache_file(cache_dir, key)
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError) as exc:
        warnings.warn(f"ignoring unreadable statistics cache file {path}: {exc}", stacklevel=3)
        return None
    if str(arrays.pop("key_json", "")) != _key_json(key):
        return None
    return arrays


def save_cached(cache_dir: str | os.PathLike, key: dict, arrays: dict[str, np.ndarray]) -> str:
    """Stores ``arrays`` for ``key`` (temporary file in the same directory, then an atomic
    rename, so a crash never leaves a half-written entry); returns the path."""
    os.makedirs(cache_dir, exist_ok=True)
    path = cache_file(cache_dir, key)
    fd, tmp = tempfile.mkstemp(dir=os.fspath(cache_dir), prefix=".stats-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key_json=np.array(_key_json(key)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
