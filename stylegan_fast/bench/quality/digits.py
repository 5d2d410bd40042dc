"""scikit-learn's bundled handwritten digits (1797 images, 8x8, 16 grey levels, 10 classes)
brought to the training data's form: ``[N, 1, R, R]`` float in [-1, 1], or a zip of PNGs with
``dataset.json`` labels (what ``stylegan-fast train --data`` and ``ImageFolderDataset``
read)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...train.checkpoint import write_atomic
from ...train.data import LABELS_FILE
from ...train.images import float_to_uint8
from ...train.prepare_data import packed_name

# load_digits stores ink as 0..16 (16 = darkest); the images are drawn light-on-dark here,
# as the data set's own pictures show them, so background is -1.
DIGITS_LEVELS = 16


def digits_images(resolution: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as ``(images [1797, 1, resolution, resolution] float32 in [-1, 1],
    labels [1797] int64)``, up-sampled bilinearly from 8x8 (bilinear never overshoots, so no
    clipping is needed, unlike Lanczos)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8:
        raise ValueError(f"resolution must be an int >= 8, got {resolution!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits come from scikit-learn: pip install scikit-learn") from exc
    digits = load_digits()
    small = torch.from_numpy(np.asarray(digits.images, dtype=np.float32)).unsqueeze(1)
    small = small / DIGITS_LEVELS * 2.0 - 1.0  # [N, 1, 8, 8] in [-1, 1]
    images = F.interpolate(
        small, size=(resolution, resolution), mode="bilinear", align_corners=False
    )
    return images.clamp(-1.0, 1.0), torch.from_numpy(np.asarray(digits.target, dtype=np.int64))


def write_digits_zip(dest: str | os.PathLike, resolution: int = 32) -> Path:
    """Writes the digits as ``resolution``² greyscale PNGs in the layout ``prepare-data``
    packs (``NNNNN/imgNNNNNNNN.png``) with their class labels in ``dataset.json``, atomically.
    Returns the path."""
    images, labels = digits_images(resolution)
    pixels = float_to_uint8(images)[:, 0].numpy()  # [N, R, R] uint8

    def write(temporary: Path) -> None:
        entries = []
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
            for index, (image, label) in enumerate(zip(pixels, labels.tolist())):
                buffer = io.BytesIO()
                Image.fromarray(image, mode="L").save(buffer, format="PNG")
                name = packed_name(index)
                archive.writestr(name, buffer.getvalue())
                entries.append([name, int(label)])
            archive.writestr(LABELS_FILE, json.dumps({"labels": entries}))

    return write_atomic(dest, write)


def split_indices(
    num: int, test_fraction: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed ``(train, test)`` split of ``range(num)`` (seeded permutation)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    order = np.random.default_rng(seed).permutation(num)
    cut = int(round(num * test_fraction))
    return np.sort(order[cut:]), np.sort(order[:cut])
