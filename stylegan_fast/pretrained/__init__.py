"""Networks trained elsewhere (or here) as our models: one entry, :func:`load_networks`, that
recognises a file by its content and returns ``{"G", "D", "G_ema"}``.

Recognised (by the first bytes and what they hold, not by the suffix):

- our generator export (``generator.safetensors``): ``G_ema`` only;
- our training checkpoint (``checkpoint-*.safetensors``, or one written by ``stylegan-fast
  import``): ``G``, ``D`` and ``G_ema``;
- an NVlabs StyleGAN1 pickle (``karras2019stylegan-*.pkl``), read by a restricted unpickler
  that executes nothing (:mod:`.nvlabs`): ``G``, ``D`` and ``G_ema`` (the pickle's ``Gs``);
- a rosinality ``style-based-gan-pytorch`` checkpoint (``.model``/``.pt``), read with
  ``torch.load(weights_only=True)`` only (:mod:`.rosinality`).

Anything else is refused with one line naming what the file is.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from ..train import checkpoint as _checkpoint
from . import rosinality
from .nvlabs import describe_nvlabs_pickle, load_nvlabs_pickle
from .rosinality import RosinalityError, describe_rosinality, load_rosinality

# A legacy (non-zip) torch.save file starts with pickle protocol 2 and this magic number.
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
KINDS = ("export", "checkpoint", "nvlabs", "rosinality")


class UnknownNetworkFile(ValueError):
    """A file of none of the recognised kinds."""


def _is_safetensors(head: bytes, size: int) -> bool:
    # 8-byte little-endian header length, then the JSON header.
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], "little")
    return 0 < length <= size - 8 and head[8:9] == b"{"


def detect_kind(path: str | os.PathLike) -> str:
    """One of :data:`KINDS` for the file at ``path``, from its content.

    Raises:
        UnknownNetworkFile: naming what was found (missing file, empty, other content).
    """
    path = Path(path)
    if not path.is_file():
        raise UnknownNetworkFile(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as stream:
        head = stream.read(16)
    if not head:
        raise UnknownNetworkFile(f"{path}: the file is empty")
    if _is_safetensors(head, size):
        metadata = _checkpoint.read_metadata(path)
        kind = metadata.get("format")
        if kind == _checkpoint.EXPORT_FORMAT:
            return "export"
        if kind == _checkpoint.CHECKPOINT_FORMAT:
            return "checkpoint"
        raise UnknownNetworkFile(
            f"{path}: a safetensors file, but not a stylegan_fast checkpoint or export "
            f"(metadata format {kind!r})"
        )
    if head.startswith(b"PK\x03\x04"):
        if _is_torch_zip(path):
            return "rosinality"
        raise UnknownNetworkFile(f"{path}: a zip archive, not a network file")
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return "rosinality"
    if head[:1] == b"\x80":
        return "nvlabs"
    raise UnknownNetworkFile(
        f"{path}: not a network file (starts with {head[:8]!r}; expected a stylegan_fast "
        "checkpoint/export, an NVlabs StyleGAN1 pickle or a rosinality checkpoint)"
    )


def _is_torch_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(
                name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist()
            )
    except zipfile.BadZipFile:
        return False


def load_networks(
    path: str | os.PathLike, *, impl: str = "auto", resolution: int | None = None
) -> dict:
    """``{"G", "D", "G_ema"}`` of the network file at ``path`` (models on CPU, eval mode);
    entries the file does not hold are None (an export holds only ``G_ema``).

    Args:
        path: an export, a checkpoint, an NVlabs pickle or a rosinality checkpoint.
        impl: the models' kernel backend.
        resolution: rosinality files only (they do not store it; default: from the name).

    Raises:
        ValueError: (its subclasses) one line naming the file and what is wrong with it.
    """
    kind = detect_kind(path)
    if kind == "export":
        return {"G": None, "D": None, "G_ema": _checkpoint.load_generator(path, impl=impl)}
    if kind == "checkpoint":
        return _checkpoint.load_networks(path, impl=impl)
    if kind == "nvlabs":
        return load_nvlabs_pickle(path, impl=impl)
    return load_rosinality(path, resolution=resolution, impl=impl)


def describe_networks(path: str | os.PathLike, *, resolution: int | None = None) -> str:
    """A few lines on what the file at ``path`` holds (its kind and architecture)."""
    kind = detect_kind(path)
    if kind == "nvlabs":
        return describe_nvlabs_pickle(path)
    if kind == "rosinality":
        return describe_rosinality(path, resolution=resolution)
    nets = load_networks(path)
    lines = [f"stylegan_fast {kind}: {path}"]
    for key, net in nets.items():
        if net is not None:
            count = sum(p.numel() for p in net.parameters())
            lines.append(f"  {key}: {type(net).__name__} {count:,} parameters, {net.config}")
    return "\n".join(lines)


__all__ = [
    "KINDS",
    "RosinalityError",
    "UnknownNetworkFile",
    "describe_networks",
    "describe_nvlabs_pickle",
    "describe_rosinality",
    "detect_kind",
    "load_networks",
    "load_nvlabs_pickle",
    "load_rosinality",
    "rosinality",
]
