"""``stylegan-fast prepare-data``: check a folder (or zip) of images and pack it into a zip of
square PNGs at one resolution, with its labels, ready for training.

The zip holds ``NNNNN/imgNNNNNNNN.png`` (1000 per folder) and, for a labelled source,
``dataset.json`` (``{"labels": [[name, int], ...]}``, the StyleGAN2-ADA convention), so
:class:`data.ImageFolderDataset` reads it directly and no resizing happens while training.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

from . import images as image_ops
from .checkpoint import write_atomic
from .data import LABELS_FILE, read_labels
from .sources import FolderSource, ZipSource, image_names, open_source

MAX_LISTED = 20


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


def pack(
    source: FolderSource | ZipSource,
    names: list[str],
    dest: str | os.PathLike,
    resolution: int,
    channels: int,
    labels: list[int] | None,
) -> Path:
    """Writes ``names`` of ``source`` as ``resolution``² PNGs (``channels`` 1 or 3) into the zip
    ``dest``, atomically; ``labels[i]`` goes with ``names[i]``."""
    packed_labels = []

    def write(temporary: Path) -> None:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
            for index, name in enumerate(names):
                image = image_ops.open_image(source.read(name), name)
                image = image_ops.to_channels(image, channels)
                image = image_ops.center_crop_resize(image, resolution)
                buffer = io.BytesIO()
                image.save(buffer, format="PNG", compress_level=6)
                packed = f"{index // 1000:05d}/img{index:08d}.png"
                archive.writestr(packed, buffer.getvalue())
                if labels is not None:
                    packed_labels.append([packed, int(labels[index])])
            content = {"labels": packed_labels if labels is not None else None}
            archive.writestr(LABELS_FILE, json.dumps(content))

    return write_atomic(dest, write)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Check a folder or zip of PNG/JPEG images (unreadable files, sizes, modes) and, with "
        "--dest, pack it into a zip of square PNGs at --resolution for training. Exit "
        "status of a check: 0 all usable, 1 some unusable."
    )
    parser.add_argument("source", help="folder (searched recursively) or zip of images")
    parser.add_argument("--dest", help="zip to write; without it, only check")
    parser.add_argument("--resolution", type=int, help="side of the packed images (with --dest)")
    parser.add_argument(
        "--channels", type=int, choices=(1, 3), default=3, help="3: RGB (default), 1: greyscale"
    )
    parser.add_argument(
        "--labels",
        help=f'labels JSON ({{"labels": [[path, int], ...]}}); default: {LABELS_FILE} in the '
        "source if present; 'none' to drop labels",
    )
    parser.add_argument(
        "--skip-bad", action="store_true", help="pack without unusable files instead of failing"
    )
    parser.add_argument("--max-images", type=int, help="use only the first N images (by path)")


def run(args: argparse.Namespace) -> int:
    if args.dest is not None and args.resolution is None:
        raise ValueError("--dest needs --resolution")
    if args.resolution is not None and args.resolution < 1:
        raise ValueError(f"--resolution must be positive, got {args.resolution}")
    if args.max_images is not None and args.max_images < 1:
        raise ValueError(f"--max-images must be positive, got {args.max_images}")
    source = open_source(args.source)
    report = scan(source, args.max_images)
    print(f"{args.source}:")
    for line in report.lines():
        print(f"  {line}")

    labels = None
    if args.labels != "none":
        if args.labels is not None:
            if not Path(args.labels).is_file():
                raise ValueError(f"--labels: {args.labels} does not exist")
            data, origin = Path(args.labels).read_bytes(), args.labels
        elif LABELS_FILE in source.names():
            data, origin = source.read(LABELS_FILE), f"{args.source}/{LABELS_FILE}"
        else:
            data = None
        if data is not None:
            parsed = read_labels(data, report.good, origin)
            if parsed is not None:
                labels = parsed[0].tolist()
                print(f"  labels: {parsed[1]} classes")

    if not report.good:
        raise ValueError(f"{args.source}: no usable PNG/JPEG images")
    if args.dest is None:
        return 1 if report.bad else 0
    if report.bad and not args.skip_bad:
        raise ValueError(
            f"{len(report.bad)} unusable files (first: {report.bad[0][0]}); fix or remove "
            "them, or pass --skip-bad"
        )
    pack(source, report.good, args.dest, args.resolution, args.channels, labels)
    with zipfile.ZipFile(args.dest) as archive:
        count = sum(1 for name in archive.namelist() if image_ops.is_image_file(name))
    print(
        f"wrote {args.dest}: {count} images, {args.resolution}x{args.resolution}, "
        f"{'RGB' if args.channels == 3 else 'greyscale'}"
        + (f", {len(report.bad)} unusable skipped" if report.bad else "")
    )
    return 0
