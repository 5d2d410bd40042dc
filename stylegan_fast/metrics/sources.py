"""Where metric images come from: real images (a tensor, a dataset, or an iterable of
batches) and generated ones (a function of the batch size), as float ``[B, 3, H, W]`` batches
in ``[-1, 1]``; and fingerprints of the real images for the statistics cache."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

__all__ = [
    "BlockDraws",
    "count_images",
    "data_fingerprint",
    "files_fingerprint",
    "generated_batches",
    "model_device_dtype",
    "real_batches",
]

RealData = torch.Tensor | torch.utils.data.Dataset | Iterable


def _as_images(value, what: str) -> torch.Tensor:
    """A tensor (or numpy array) of images, or the first element of a ``(images, labels, ...)``
    tuple, as float in ``[-1, 1]``: uint8 is taken as ``0..255`` and rescaled."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{what} must be image tensors (or (images, labels) tuples), got {type(value).__name__}"
        )
    if value.dtype == torch.uint8:
        return value.to(torch.float32) / 127.5 - 1.0
    if not value.is_floating_point():
        raise TypeError(f"{what} must be float in [-1, 1] or uint8, got dtype {value.dtype}")
    return value


def _check_batch(batch: torch.Tensor, what: str) -> torch.Tensor:
    if batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise ValueError(f"{what} must be [N, 3, H, W] (or [N, 1, H, W]), got {list(batch.shape)}")
    return batch


def count_images(data: RealData) -> int | None:
    """How many images ``data`` holds, or None for an iterable without a length."""
    if isinstance(data, torch.Tensor):
        return data.shape[0]
    if isinstance(data, (list, tuple)):
        return sum(_as_images(batch, "real image batches").shape[0] for batch in data)
    if isinstance(data, torch.utils.data.DataLoader):
        return len(data.dataset) if hasattr(data.dataset, "__len__") else None
    return len(data) if hasattr(data, "__len__") and hasattr(data, "__getitem__") else None


def real_batches(
    data: RealData, num: int | None, batch_size: int, num_workers: int = 0
) -> Iterator[torch.Tensor]:
    """The first ``num`` images of ``data`` (all if None), in order, as float batches.

    ``data``: a tensor ``[N, 3, H, W]`` (float in ``[-1, 1]`` or uint8); a map-style dataset
    whose items are ``[3, H, W]`` images or ``(image, label, ...)`` tuples (loaded with a
    ``DataLoader``, ``num_workers`` workers, no shuffling); or an iterable of batches (a
    ``DataLoader``, a list) of ``[B, 3, H, W]`` or ``(images, labels, ...)`` that can be
    iterated more than once (the metrics read the first image to learn the resolution).
    """
    remaining = num if num is not None else float("inf")
    if isinstance(data, torch.Tensor):
        _check_batch(data, "real images")
        batches: Iterable = (data[i : i + batch_size] for i in range(0, data.shape[0], batch_size))
    elif isinstance(data, (list, tuple, torch.utils.data.DataLoader)):
        batches = data
    elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        batches = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=False, num_workers=num_workers
        )
    elif isinstance(data, Iterator):
        raise TypeError(
            "real data must be re-iterable (a tensor, a dataset, a DataLoader or a list of "
            f"batches), got a one-shot {type(data).__name__}: it would be consumed by the "
            "first pass"
        )
    elif isinstance(data, Iterable):
        batches = data
    else:
        raise TypeError(
            "real data must be an image tensor [N, 3, H, W], a dataset of images, or an "
            f"iterable of image batches; got {type(data).__name__}"
        )
    for batch in batches:
        if remaining <= 0:
            return
        images = _check_batch(_as_images(batch, "real images"), "real image batches")
        images = images[: int(min(remaining, images.shape[0]))]
        remaining -= images.shape[0]
        yield images


def generated_batches(
    generator_fn: Callable[[int], torch.Tensor], num: int, batch_size: int
) -> Iterator[torch.Tensor]:
    """``num`` images from ``generator_fn(batch) -> [batch, 3, H, W]`` (float, ``[-1, 1]``),
    asked for in batches of at most ``batch_size``."""
    if not callable(generator_fn):
        raise TypeError(f"generator_fn must be callable, got {type(generator_fn).__name__}")
    done = 0
    while done < num:
        count = min(batch_size, num - done)
        images = _as_images(generator_fn(count), "generator_fn's output")
        _check_batch(images, "generator_fn's output")
        if images.shape[0] != count:
            raise ValueError(
                f"generator_fn({count}) must return {count} images, got {images.shape[0]}"
            )
        done += count
        yield images


def files_fingerprint(
    paths: Sequence[str | os.PathLike], root: str | os.PathLike | None = None
) -> str:
    """SHA-256 over each file's path (relative to ``root``, sorted) and contents: what a
    dataset read from files can return from a ``fingerprint()`` method, so the statistics cache
    knows it without decoding an image."""
    digest = hashlib.sha256()
    named = sorted(
        (os.path.relpath(p, root) if root is not None else os.fspath(p), os.fspath(p))
        for p in paths
    )
    for name, path in named:
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def data_fingerprint(data: RealData, num: int | None, batch_size: int = 256) -> str:
    """A string that changes when the first ``num`` images of ``data`` change.

    A dataset with a ``fingerprint()`` method (e.g. one returning :func:`files_fingerprint` of
    its files) is asked for it; anything else is hashed image by image, which costs one read
    of the data (pass ``data_key`` to the metric functions to skip it).
    """
    fingerprint = getattr(data, "fingerprint", None)
    if callable(fingerprint):
        return f"fingerprint:{fingerprint()}"
    digest = hashlib.sha256()
    for images in real_batches(data, num, batch_size):
        images = images.detach().to("cpu", torch.float32).contiguous()
        digest.update(str(list(images.shape[1:])).encode())
        digest.update(images.numpy().tobytes())
    return f"content:{digest.hexdigest()}"


class BlockDraws:
    """Random draws served in batches of any size but made in blocks of a fixed size, so
    the values (and a metric) do not depend on the batch size a caller picks.

    ``draw_block(size) -> tuple of tensors [size, ...]`` makes one block; :meth:`take` hands
    out the next ``n`` rows of each.
    """

    def __init__(self, draw_block: Callable[[int], tuple[torch.Tensor, ...]], block: int = 1024):
        self.draw_block = draw_block
        self.block = block
        self._buffer: tuple[torch.Tensor, ...] | None = None

    def take(self, n: int) -> tuple[torch.Tensor, ...]:
        while self._buffer is None or self._buffer[0].shape[0] < n:
            drawn = self.draw_block(self.block)
            self._buffer = (
                drawn
                if self._buffer is None
                else tuple(torch.cat([old, new]) for old, new in zip(self._buffer, drawn))
            )
        out = tuple(t[:n] for t in self._buffer)
        self._buffer = tuple(t[n:] for t in self._buffer)
        return out


def model_device_dtype(model) -> tuple[torch.device, torch.dtype]:
    """The device and dtype of a module's first floating parameter or buffer (what its latent
    inputs should have); CPU float32 for anything else."""
    if isinstance(model, torch.nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32
