"""Checking a folder (or zip) of images and packing it into a zip of square PNGs at one
resolution, with its labels, ready for training: what ``stylegan-fast prepare-data`` runs.

The zip holds ``NNNNN/imgNNNNNNNN.png`` (1000 per folder) and, for a labelled source,
``dataset.json`` (``{"labels": [[name, int], ...]}``, the StyleGAN2-ADA convention), so
:class:`data.ImageFolderDataset` reads it directly and no resizing happens while training.
Labels taken from sub-folder names (:func:`labels_from_folders`) also write their mapping,
``"classes": {folder name: int}``.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

from . import images as image_ops
from .checkpoint import write_atomic
from .data import LABELS_FILE
from .sources import FolderSource, ZipSource, image_names

MAX_LISTED = 20


def packed_name(index: int) -> str:
    """The name of image ``index`` inside a packed zip: ``NNNNN/imgNNNNNNNN.png`` (1000 per
    folder, so no folder grows too large to list)."""
    return f"{index // 1000:05d}/img{index:08d}.png"


@dataclasses.dataclass
class ScanReport:
    """What a scan of a source found."""

    good: list[str]  # decodable images, sorted
    bad: list[tuple[str, str]]  # (name, reason)
    other_files: int  # files that are not PNG/JPEG (dataset.json included)
    sizes: collections.Counter  # (width, height) -> count, good images only
    modes: collections.Counter  # Pillow mode -> count, good images only

    def lines(self) -> list[str]:
        total = len(self.good) + len(self.bad)
        out = [f"images: {total} PNG/JPEG files, {len(self.good)} usable, {len(self.bad)} unusable"]
        if self.other_files:
            out.append(f"other files (ignored): {self.other_files}")
        if self.sizes:
            sides = [min(size) for size in self.sizes.elements()]
            common = ", ".join(f"{w}x{h}: {n}" for (w, h), n in self.sizes.most_common(5))
            out.append(
                f"sizes: {len(self.sizes)} distinct, shorter side {min(sides)}..{max(sides)} "
                f"px; most common {common}"
            )
            out.append("modes: " + ", ".join(f"{m}: {n}" for m, n in self.modes.most_common()))
        for name, reason in self.bad[:MAX_LISTED]:
            out.append(f"unusable: {reason}" if reason.startswith(name) else f"{name}: {reason}")
        if len(self.bad) > MAX_LISTED:
            out.append(f"... and {len(self.bad) - MAX_LISTED} more unusable files")
        return out


def scan(source: FolderSource | ZipSource, max_images: int | None = None) -> ScanReport:
    """Decodes every PNG/JPEG of ``source`` (the first ``max_images``), noting sizes and modes
    of the usable ones and the reason for each unusable one."""
    names = source.names()
    candidates = image_names(source)
    if max_images is not None:
        candidates = candidates[:max_images]
    report = ScanReport(
        [], [], len(names) - len(image_names(source)), collections.Counter(), collections.Counter()
    )
    for name in candidates:
        try:
            image = image_ops.open_image(source.read(name), name)
        except image_ops.ImageError as exc:
            report.bad.append((name, str(exc)))
            continue
        report.good.append(name)
        report.sizes[image.size] += 1
        report.modes[image.mode] += 1
    return report


def labels_from_folders(names: list[str]) -> tuple[list[int], dict[str, int]]:
    """``(labels, classes)`` for images named ``<folder>/.../<file>``: each image's class is
    its top-level folder, numbered in sorted order of the folder names (``classes``: folder
    -> index). ValueError for an image outside any folder, or fewer than two folders."""
    outside = [name for name in names if "/" not in name]
    if outside:
        raise ValueError(
            f"--labels-from-folders: {outside[0]} is not in a class sub-folder"
            + (f" (and {len(outside) - 1} more images)" if len(outside) > 1 else "")
        )
    folders = [name.split("/", 1)[0] for name in names]
    classes = {folder: index for index, folder in enumerate(sorted(set(folders)))}
    if len(classes) < 2:
        raise ValueError(
            f"--labels-from-folders: expected one sub-folder per class, found {len(classes)}"
        )
    return [classes[folder] for folder in folders], classes


def pack(
    source: FolderSource | ZipSource,
    names: list[str],
    dest: str | os.PathLike,
    resolution: int,
    channels: int,
    labels: list[int] | None,
    classes: dict[str, int] | None = None,
) -> Path:
    """Writes ``names`` of ``source`` as ``resolution``² PNGs (``channels`` 1 or 3) into the zip
    ``dest``, atomically; ``labels[i]`` goes with ``names[i]``; ``classes`` (class name ->
    label), when given, is stored in ``dataset.json`` beside the labels."""
    packed_labels = []

    def write(temporary: Path) -> None:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
            for index, name in enumerate(names):
                image = image_ops.open_image(source.read(name), name)
                image = image_ops.to_channels(image, channels)
                image = image_ops.center_crop_resize(image, resolution)
                buffer = io.BytesIO()
                image.save(buffer, format="PNG", compress_level=6)
                packed = packed_name(index)
                archive.writestr(packed, buffer.getvalue())
                if labels is not None:
                    packed_labels.append([packed, int(labels[index])])
            content = {"labels": packed_labels if labels is not None else None}
            if classes is not None:
                content["classes"] = classes
            archive.writestr(LABELS_FILE, json.dumps(content))

    return write_atomic(dest, write)
