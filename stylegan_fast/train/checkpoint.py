"""Checkpoints and generator exports: safetensors files, written atomically, verified on load,
never holding pickled code.

File format (both kinds): a safetensors file whose metadata holds ``format``,
``format_version``, and ``sha256``: the digest of every other metadata entry and every
tensor's name, dtype, shape and bytes. Loading recomputes it, so a truncated or altered file
is refused with :class:`CheckpointError`.

- A **checkpoint** (``format = "stylegan_fast.checkpoint"``) stores any state tree (see
  :mod:`state_tree`): the tensors by path, the rest as JSON in ``metadata["state"]``. A
  training checkpoint's tree has these keys (the trainer writes them; :func:`load_generator`
  reads ``G_ema``/``G`` and ``config["G"]``): ``G``, ``D``, ``G_ema`` (state dicts), ``G_opt``,
  ``D_opt`` (optimizer state dicts), ``scaler``, ``progress`` (step, images seen, lod),
  ``rng`` (:func:`rng.capture_rng_state`), ``config`` (``{"G": GeneratorConfig.to_dict(),
  "D": ..., "train": ...}``). A weights-only checkpoint (:func:`save_networks`) holds only
  ``G``, ``D``, ``G_ema``, ``config`` (``G``, ``D``) and ``imported`` (its source).
- An **export** (``format = "stylegan_fast.generator"``) stores a generator's ``state_dict()``
  under its own keys and ``GeneratorConfig.to_json()`` in ``metadata["config"]``, so plain
  ``safetensors.torch.load_file`` plus ``Generator.from_config`` also rebuild it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import safetensors.torch
import torch
from safetensors import safe_open

from . import state_tree

CHECKPOINT_FORMAT = "stylegan_fast.checkpoint"
EXPORT_FORMAT = "stylegan_fast.generator"
FORMAT_VERSION = "1"
# A weights-only checkpoint (written by `stylegan-fast import`) names its source here.
IMPORTED_KEY = "imported"


class CheckpointError(ValueError):
    """A checkpoint or export file that is missing, truncated, altered, or of another kind."""


def _digest(metadata: Mapping[str, str], tensors: Mapping[str, torch.Tensor]) -> str:
    hasher = hashlib.sha256()
    hasher.update(json.dumps({k: metadata[k] for k in sorted(metadata)}).encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        header = json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode()
        hasher.update(len(header).to_bytes(8, "little") + header)
        hasher.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return hasher.hexdigest()


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not supported on every platform/file system.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Calls ``write(temporary_path)``, fsyncs the file, then renames it onto ``path``.

    The temporary file is in ``path``'s directory (a rename within one file system is
    atomic), so a crash at any point leaves either the previous ``path`` or the new one,
    never a partial file; the temporary file is removed when ``write`` raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temporary = Path(temporary)
    try:
        write(temporary)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def _write_safetensors(
    path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    # Own CPU copies: safetensors refuses tensors that share storage (views, tied weights).
    stored = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in tensors.items()}
    metadata = dict(metadata, format_version=FORMAT_VERSION)
    metadata["sha256"] = _digest(metadata, stored)
    return write_atomic(path, lambda tmp: safetensors.torch.save_file(stored, str(tmp), metadata))


def _read_safetensors(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers/sizes
        raise CheckpointError(
            f"{path}: not a readable safetensors file, probably truncated or corrupt "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if metadata.get("format") not in (CHECKPOINT_FORMAT, EXPORT_FORMAT):
        raise CheckpointError(
            f"{path}: not a stylegan_fast checkpoint or export (metadata format is "
            f"{metadata.get('format')!r})"
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {metadata.get('format_version')!r} is not supported "
            f"(this stylegan_fast reads version {FORMAT_VERSION})"
        )
    stored_digest = metadata.pop("sha256", None)
    if stored_digest != _digest(metadata, tensors):
        raise CheckpointError(f"{path}: integrity check failed (file altered or corrupt)")
    return metadata, tensors


def save_checkpoint(path: str | os.PathLike, state: Mapping) -> Path:
    """Writes the state tree ``state`` (a dict; see :mod:`state_tree`) to ``path`` atomically.

    Tensors are stored as CPU copies in their dtype (memory format is not kept:
    ``load_state_dict`` copies into the model's own layout).
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    skeleton, tensors = state_tree.encode(dict(state))
    metadata = {"format": CHECKPOINT_FORMAT, "state": json.dumps(skeleton, allow_nan=False)}
    return _write_safetensors(path, tensors, metadata)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The state tree saved by :func:`save_checkpoint`, verified; tensors on CPU.

    Raises:
        CheckpointError: missing, truncated or altered file, or an export (use
            :func:`load_generator` for those).
    """
    metadata, tensors = _read_safetensors(path)
    if metadata["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: is a generator export, not a training checkpoint")
    return state_tree.decode(json.loads(metadata["state"]), tensors)


def export_generator(
    path: str | os.PathLike, G: torch.nn.Module, dtype: torch.dtype | None = None
) -> Path:
    """Writes ``G``'s ``state_dict()`` (cast to ``dtype`` if given) and ``G.config`` to ``path``
    as a safetensors file, atomically."""
    config = getattr(G, "config", None)
    if config is None or not hasattr(config, "to_json"):
        raise TypeError("G must have a .config with to_json() (a stylegan_fast Generator)")
    tensors = dict(G.state_dict())
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    metadata = {"format": EXPORT_FORMAT, "class": type(G).__name__, "config": config.to_json()}
    return _write_safetensors(path, tensors, metadata)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors metadata of ``path`` (header only, not verified: for telling a
    checkpoint from an export before loading it)."""
    try:
        with safe_open(Path(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})"
        ) from exc


def save_networks(path: str | os.PathLike, networks: Mapping, source: Mapping) -> Path:
    """Writes a weights-only checkpoint: ``G``, ``D``, ``G_ema`` (None entries left out), their
    configs and ``state[IMPORTED_KEY] = source`` (where the weights came from). It has no
    optimizer or progress state: ``train --resume`` starts from it as ``--init`` does, and
    every tool reads its ``G_ema``."""
    state: dict = {"config": {}, IMPORTED_KEY: dict(source)}
    for key in ("G", "D", "G_ema"):
        net = networks.get(key)
        if net is not None:
            state[key] = net.state_dict()
            state["config"]["D" if key == "D" else "G"] = net.config.to_dict()
    return save_checkpoint(path, state)


def load_networks(path: str | os.PathLike, impl: str = "auto") -> dict:
    """``{"G", "D", "G_ema"}`` rebuilt from a training checkpoint (models on CPU in eval
    mode; an entry the checkpoint lacks, or a network without a stored config, is None)."""
    from stylegan_fast.models import Discriminator, Generator

    state = load_checkpoint(path)
    configs = state.get("config") or {}
    out = {}
    for key, model, config_key in (
        ("G", Generator, "G"),
        ("D", Discriminator, "D"),
        ("G_ema", Generator, "G"),
    ):
        if key not in state or not configs.get(config_key):
            out[key] = None
            continue
        net = model.from_config(configs[config_key], impl=impl)
        net.load_state_dict(state[key])
        out[key] = net.eval()
    return out


def load_generator(
    path: str | os.PathLike,
    impl: str = "auto",
    device: torch.device | str = "cpu",
    prefer_ema: bool = True,
) -> torch.nn.Module:
    """Rebuilds a :class:`stylegan_fast.models.Generator` from a checkpoint or an export.

    From a checkpoint, the EMA generator ``G_ema`` is used (``prefer_ema=False``, or no
    ``G_ema`` in the file: the trained ``G``). Returns the model in eval mode on ``device``.
    """
    from stylegan_fast.models import Generator, GeneratorConfig

    metadata, tensors = _read_safetensors(path)
    if metadata["format"] == EXPORT_FORMAT:
        config = GeneratorConfig.from_json(metadata["config"])
        weights = tensors
    else:
        state = state_tree.decode(json.loads(metadata["state"]), tensors)
        key = "G_ema" if prefer_ema and "G_ema" in state else "G"
        if key not in state or "G" not in state.get("config", {}):
            raise CheckpointError(
                f"{path}: the checkpoint holds no generator (needs {key!r} and config['G'])"
            )
        config = GeneratorConfig.from_dict(state["config"]["G"])
        weights = state[key]
    G = Generator.from_config(config, impl=impl)
    G.load_state_dict(weights)
    return G.to(device).eval().requires_grad_(False)


class CheckpointManager:
    """Numbered checkpoints in one directory, keeping the newest ``keep_last``.

    Files are ``{prefix}-{number:09d}.safetensors``; the trainer numbers them by images seen,
    so names sort in training order. Temporary files of a killed save are removed when the
    manager is created (each one is as large as a checkpoint).
    """

    def __init__(
        self, directory: str | os.PathLike, keep_last: int | None = 3, prefix: str = "checkpoint"
    ):
        if keep_last is not None and (
            isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1
        ):
            raise ValueError(f"keep_last must be None (keep all) or an int >= 1, got {keep_last!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
            raise ValueError(f"prefix must be letters, digits, '_', '.', '-', got {prefix!r}")
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.prefix = prefix
        self._pattern = re.compile(rf"{re.escape(prefix)}-(\d+)\.safetensors")
        if self.directory.is_dir():
            for stale in self.directory.glob(f".{prefix}-*.safetensors.*.tmp"):
                stale.unlink(missing_ok=True)

    def path_for(self, number: int) -> Path:
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"checkpoint number must be a non-negative int, got {number!r}")
        return self.directory / f"{self.prefix}-{number:09d}.safetensors"

    def checkpoints(self) -> list[Path]:
        """Existing checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = self._pattern.fullmatch(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return [path for _, path in sorted(found)]

    def latest(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, state: Mapping, number: int) -> Path:
        """Writes checkpoint ``number`` atomically, then deletes all but the newest
        ``keep_last`` (only after the new file is in place)."""
        path = save_checkpoint(self.path_for(number), state)
        if self.keep_last is not None:
            for old in self.checkpoints()[: -self.keep_last]:
                old.unlink(missing_ok=True)
        return path
