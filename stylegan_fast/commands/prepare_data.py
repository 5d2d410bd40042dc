"""``stylegan-fast prepare-data``: scans a folder or zip of images, prints what it found and,
with ``--dest``, packs it into a training zip (``scan`` and ``pack`` of
:mod:`stylegan_fast.train.prepare_data`)."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

from ..train import images as image_ops
from ..train.data import LABELS_FILE, read_labels
from ..train.prepare_data import labels_from_folders, pack, scan
from ..train.sources import open_source

HELP = "check a folder of images and pack it into a zip"


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
        "--labels-from-folders",
        action="store_true",
        help="label each image by its top-level sub-folder (sorted folder names -> 0, 1, ...; "
        'the mapping is written to dataset.json as "classes")',
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

    if not report.good:
        raise ValueError(f"{args.source}: no usable PNG/JPEG images")
    labels = classes = None
    if args.labels_from_folders:
        if args.labels is not None:
            raise ValueError("--labels-from-folders: give it or --labels, not both")
        labels, classes = labels_from_folders(report.good)
        print(f"  labels: {len(classes)} classes from folders ({', '.join(classes)})")
    elif args.labels != "none":
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

    if args.dest is None:
        return 1 if report.bad else 0
    if report.bad and not args.skip_bad:
        raise ValueError(
            f"{len(report.bad)} unusable files (first: {report.bad[0][0]}); fix or remove "
            "them, or pass --skip-bad"
        )
    pack(source, report.good, args.dest, args.resolution, args.channels, labels, classes)
    with zipfile.ZipFile(args.dest) as archive:
        count = sum(1 for name in archive.namelist() if image_ops.is_image_file(name))
    print(
        f"wrote {args.dest}: {count} images, {args.resolution}x{args.resolution}, "
        f"{'RGB' if args.channels == 3 else 'greyscale'}"
        + (f", {len(report.bad)} unusable skipped" if report.bad else "")
    )
    return 0
