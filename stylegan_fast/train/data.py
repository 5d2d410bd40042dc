"""Training data: image datasets from a folder or zip, the bundled faces, and a sampler that
shards one seeded stream of indices across ranks.

Every dataset item is ``(image, label)``: ``image: float32 [C, R, R]`` in [-1, 1] (C = 3 unless
``channels=1``), ``label: float32 [label_dim]``, one-hot (``label_dim = 0`` when unlabelled, so
it can be passed to the models as ``c`` either way).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler

from . import images as image_ops
from .sources import FolderSource, ZipSource, image_names, open_source

LABELS_FILE = "dataset.json"
CHECKS = ("header", "full")


def _check_resolution(resolution) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    return resolution


def _check_channels(channels) -> int:
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    return channels


class _ImageDataset(Dataset):
    """Shared indexing: items ``i >= num_images`` are the x-flipped copies of ``i - num_images``.

    Doubling the index space (rather than flipping at random) keeps augmentation a pure
    function of the index, so a seeded sampler reproduces the exact batches after a resume.
    """

    resolution: int
    channels: int
    xflip: bool
    label_dim: int
    num_images: int

    def _image(self, index: int) -> torch.Tensor:  # float32 [C, R, R] in [-1, 1]
        raise NotImplementedError

    def _label(self, index: int) -> torch.Tensor:  # float32 [label_dim]
        return torch.zeros(0)

    def __len__(self) -> int:
        return self.num_images * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        index %= len(self)
        flipped = index >= self.num_images
        source_index = index - self.num_images if flipped else index
        image = self._image(source_index)
        if flipped:
            image = image.flip(-1)
        return image, self._label(source_index)


def read_labels(
    data: bytes | str, names: Sequence[str], origin: str
) -> tuple[np.ndarray, int] | None:
    """Labels for ``names`` from a StyleGAN2-ADA style ``dataset.json``.

    The file holds ``{"labels": [[relative_path, int_label], ...]}`` (or ``"labels": null``
    for an unlabelled set). Returns ``(labels int64 [len(names)], label_dim)`` with
    ``label_dim = max + 1``, or None when the file says null.

    Raises:
        ValueError: naming ``origin`` for malformed JSON, and the image for a missing label.
    """
    try:
        content = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{origin}: not valid JSON ({exc})") from exc
    if not isinstance(content, dict) or "labels" not in content:
        raise ValueError(f'{origin}: expected an object with a "labels" key')
    entries = content["labels"]
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise ValueError(f'{origin}: "labels" must be a list of [path, int] pairs or null')
    table: dict[str, int] = {}
    for entry in entries:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or isinstance(entry[1], bool)
            or not isinstance(entry[1], int)
            or entry[1] < 0
        ):
            raise ValueError(
                f"{origin}: each label must be [relative_path, non-negative int], got {entry!r}"
            )
        table[entry[0].replace("\\", "/")] = entry[1]
    missing = [name for name in names if name not in table]
    if missing:
        raise ValueError(
            f"{origin}: no label for {missing[0]}"
            + (f" (and {len(missing) - 1} more images)" if len(missing) > 1 else "")
        )
    labels = np.array([table[name] for name in names], dtype=np.int64)
    return labels, int(labels.max()) + 1 if len(labels) else 0


class ImageFolderDataset(_ImageDataset):
    """The PNG/JPEG images under a folder (recursively) or inside a zip archive.

    Each image is converted to ``channels`` (greyscale replicated to RGB, alpha dropped),
    centre-cropped to a square and resized to ``resolution``² (Lanczos), then scaled to
    [-1, 1]. Files are ordered by relative path, so indices are stable.

    Args:
        path: a directory or a ``.zip`` file.
        resolution: output side R (the model's resolution).
        channels: 3 (RGB) or 1 (greyscale).
        labels: None: use ``dataset.json`` at the root if there is one; True: require it;
            False: unlabelled; a path: read labels from that JSON file.
        xflip: add a mirrored copy of every image (the dataset doubles in length).
        skip_bad: False: an unusable image raises :class:`images.ImageError` naming the
            file; True: it is left out, and listed in ``skipped`` as ``(name, reason)``.
        check: how much of each file is read at construction: "header" (format and mode;
            cheap) or "full" (decodes every image; also catches truncated data, which with
            "header" surfaces as an ImageError naming the file when the item is loaded).
        max_images: keep only the first ``max_images`` images (by path order).
        cache: keep preprocessed images in memory (for small datasets).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: int,
        channels: int = 3,
        labels: str | os.PathLike | bool | None = None,
        xflip: bool = False,
        skip_bad: bool = False,
        check: str = "header",
        max_images: int | None = None,
        cache: bool = False,
    ):
        self.resolution = _check_resolution(resolution)
        self.channels = _check_channels(channels)
        if check not in CHECKS:
            raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
        if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
            raise ValueError(f"max_images must be None or a positive int, got {max_images!r}")
        self.path = Path(path)
        self.source: FolderSource | ZipSource = open_source(path)
        self.xflip = bool(xflip)
        self.cache = bool(cache)
        self._cached: dict[int, torch.Tensor] = {}

        names = image_names(self.source)
        if max_images is not None:
            names = names[:max_images]
        self.skipped: list[tuple[str, str]] = []
        good = []
        for name in names:
            try:
                self._check_file(name, check)
            except image_ops.ImageError as exc:
                if not skip_bad:
                    raise
                self.skipped.append((name, str(exc)))
            else:
                good.append(name)
        if not good:
            raise ValueError(
                f"{self.path}: no usable PNG/JPEG images"
                + (f" ({len(self.skipped)} skipped as unusable)" if self.skipped else "")
            )
        self.names = good
        self.num_images = len(good)

        self.raw_labels, self.label_dim = self._load_labels(labels)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def _check_file(self, name: str, check: str) -> None:
        if check == "full":
            image_ops.open_image(self.source.read(name), name)
            return
        try:
            with self.source.open(name) as stream, Image.open(stream) as image:
                mode = image.mode
                size = image.size
        except UnidentifiedImageError as exc:
            raise image_ops.ImageError(
                f"{name}: cannot read image (not a format Pillow recognises)"
            ) from exc
        except Exception as exc:
            raise image_ops.ImageError(
                f"{name}: cannot read image ({type(exc).__name__}: {exc})"
            ) from exc
        if min(size) < 1:
            raise image_ops.ImageError(f"{name}: empty image of size {size}")
        image_ops.check_mode(mode, name)

    def _load_labels(self, labels) -> tuple[np.ndarray | None, int]:
        if labels is False:
            return None, 0
        if labels is None or labels is True:
            if LABELS_FILE not in self.source.names():
                if labels is True:
                    raise ValueError(f"{self.path}: labels requested but there is no {LABELS_FILE}")
                return None, 0
            data, origin = self.source.read(LABELS_FILE), f"{self.path}/{LABELS_FILE}"
        else:
            labels_path = Path(labels)
            if not labels_path.is_file():
                raise ValueError(f"labels file {labels_path} does not exist")
            data, origin = labels_path.read_bytes(), str(labels_path)
        parsed = read_labels(data, self.names, origin)
        return (None, 0) if parsed is None else parsed

    def drop_labels(self) -> None:
        """Makes the dataset unlabelled (``label_dim = 0``), e.g. to train an unconditional
        model on a labelled set, without scanning the images again."""
        self.raw_labels, self.label_dim = None, 0

    def load_uint8(self, index: int) -> np.ndarray:
        """Image ``index`` (of ``num_images``, unflipped) as ``uint8 [C, R, R]``."""
        name = self.names[index]
        image = image_ops.open_image(self.source.read(name), name)
        image = image_ops.to_channels(image, self.channels)
        image = image_ops.center_crop_resize(image, self.resolution)
        return image_ops.to_uint8_chw(image)

    def _image(self, index: int) -> torch.Tensor:
        cached = self._cached.get(index)
        if cached is not None:
            return cached
        image = image_ops.uint8_to_float(torch.from_numpy(self.load_uint8(index)))
        if self.cache:
            self._cached[index] = image
        return image

    def _label(self, index: int) -> torch.Tensor:
        if self.raw_labels is None:
            return torch.zeros(0)
        one_hot = torch.zeros(self.label_dim)
        one_hot[int(self.raw_labels[index])] = 1.0
        return one_hot

    def __repr__(self) -> str:
        return (
            f"ImageFolderDataset({str(self.path)!r}, images={self.num_images}, "
            f"resolution={self.resolution}, channels={self.channels}, "
            f"label_dim={self.label_dim}, xflip={self.xflip}, skipped={self.num_skipped})"
        )


class BundledFaces(_ImageDataset):
    """The 100 face images of scikit-image's ``lfw_subset`` (greyscale, 25x25), offline.

    ``skimage.data.lfw_subset()`` holds 200 crops: the first 100 are faces from Labeled Faces
    in the Wild, the last 100 are background patches (non-faces, for detector training);
    only the faces are used. They are resized (Lanczos, in float) to ``resolution``² and, for
    ``channels=3``, replicated to RGB. Unlabelled.
    """

    NUM_FACES = 100

    def __init__(self, resolution: int = 32, channels: int = 3, xflip: bool = False):
        self.resolution = _check_resolution(resolution)
        self.channels = _check_channels(channels)
        self.xflip = bool(xflip)
        self.label_dim = 0
        try:
            from skimage.data import lfw_subset
        except ImportError as exc:
            raise ImportError(
                "the bundled faces come from scikit-image: pip install scikit-image"
            ) from exc
        faces = np.asarray(lfw_subset()[: self.NUM_FACES], dtype=np.float32)  # [100, 25, 25]
        resized = [
            np.asarray(image_ops.center_crop_resize(Image.fromarray(face), self.resolution))
            for face in faces
        ]
        # Lanczos overshoots at edges; clip back to the source range [0, 1].
        stacked = torch.from_numpy(np.clip(np.stack(resized), 0.0, 1.0))  # [100, R, R]
        self._images = (stacked * 2.0 - 1.0).unsqueeze(1).expand(-1, self.channels, -1, -1)
        self._images = self._images.contiguous()
        self.num_images = len(self._images)

    def _image(self, index: int) -> torch.Tensor:
        return self._images[index]

    def __repr__(self) -> str:
        return (
            f"BundledFaces(images={self.num_images}, resolution={self.resolution}, "
            f"channels={self.channels}, xflip={self.xflip})"
        )


def open_dataset(
    path: str | os.PathLike | None, resolution: int, channels: int = 3, **options
) -> ImageFolderDataset | BundledFaces:
    """``ImageFolderDataset(path, ...)``, or :class:`BundledFaces` when ``path`` is None.

    ``options`` go to the dataset (``xflip`` for both; labels, skip_bad, check, max_images,
    cache for a folder/zip).
    """
    if path is None:
        unknown = set(options) - {"xflip"}
        if unknown:
            raise ValueError(f"the bundled faces take only xflip, got {sorted(unknown)}")
        return BundledFaces(resolution, channels, **options)
    return ImageFolderDataset(path, resolution, channels, **options)


def _check_non_negative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


class ShardedSampler(Sampler[int]):
    """Dataset indices for one rank: rank ``r`` of ``W`` takes items ``r, r + W, r + 2W, ...``
    of one stream shared by all ranks.

    The stream is the concatenation of per-epoch permutations of ``range(dataset_size)``,
    each seeded by ``(seed, epoch)`` alone, so every rank computes the same stream without
    communication. The ranks' shares are disjoint and together cover each epoch; with
    per-rank batch B, step k's batches across ranks are exactly items
    ``[k * B * W, (k + 1) * B * W)`` of the stream: the global batch a single process with
    batch ``B * W`` would draw.

    Args:
        dataset_size: number of dataset items.
        rank, world_size: this process's rank and the number of ranks.
        shuffle: permute each epoch (False: every epoch is ``0, 1, ..., n - 1``).
        seed: non-negative int.
        infinite: True: iterate forever across epochs (training). False: one epoch,
            ``epoch`` (set with :meth:`set_epoch`), this rank's share only.
        start: (infinite) skip this rank's first ``start`` items, to resume after
            ``start`` items were consumed.
    """

    def __init__(
        self,
        dataset_size: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        infinite: bool = True,
        start: int = 0,
    ):
        if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < 1:
            raise ValueError(f"dataset_size must be a positive int, got {dataset_size!r}")
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a positive int, got {world_size!r}")
        _check_non_negative_int("rank", rank)
        if rank >= world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.dataset_size = dataset_size
        self.rank = rank
        self.world_size = world_size
        self.shuffle = bool(shuffle)
        self.seed = _check_non_negative_int("seed", seed)
        self.infinite = bool(infinite)
        self.start = _check_non_negative_int("start", start)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch a finite sampler iterates (its permutation's seed)."""
        self.epoch = _check_non_negative_int("epoch", epoch)

    def permutation(self, epoch: int) -> np.ndarray:
        """The stream's items for ``epoch``: ``int64 [dataset_size]``."""
        if not self.shuffle:
            return np.arange(self.dataset_size, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(self.dataset_size)

    def __len__(self) -> int:
        if self.infinite:
            raise TypeError("an infinite ShardedSampler has no length")
        return (self.dataset_size - self.rank + self.world_size - 1) // self.world_size

    def __iter__(self) -> Iterator[int]:
        n, step = self.dataset_size, self.world_size
        if not self.infinite:
            yield from (int(i) for i in self.permutation(self.epoch)[self.rank :: step])
            return
        epoch, offset = divmod(self.rank + step * self.start, n)
        while True:
            order = self.permutation(epoch)
            while offset < n:
                yield int(order[offset])
                offset += step
            epoch, offset = epoch + offset // n, offset % n
