"""Image decoding and conversion for training data and sample output: Pillow images to model
tensors (mode handling, centre crop, resize) and model tensors back to PNG grids."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")

# Modes Pillow converts to "L"/"RGB" without guessing a value range. Alpha is dropped: the
# models generate opaque images.
_EIGHT_BIT_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"}
# 16-bit greyscale (16-bit PNGs) has a known range, 0..65535, so it maps to 8 bits exactly.
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B"}


class ImageError(ValueError):
    """An image file that cannot be used: unreadable, truncated, or of an unsupported mode."""


def is_image_file(name: str) -> bool:
    """True for names ending in .png, .jpg or .jpeg (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def open_image(data: bytes, name: str) -> Image.Image:
    """Decodes ``data`` fully (a truncated file fails here, not later) and checks its mode.

    Raises:
        ImageError: naming ``name`` and the reason, for undecodable data or a mode without a
            defined 8-bit conversion (32-bit integer or float images).
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: cannot decode image (not a format Pillow recognises)") from exc
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ...)
        raise ImageError(f"{name}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    check_mode(image.mode, name)
    return image


def check_mode(mode: str, name: str) -> None:
    """Raises ImageError unless Pillow ``mode`` has a defined conversion to 8-bit L/RGB."""
    if mode not in _EIGHT_BIT_MODES and mode not in _SIXTEEN_BIT_MODES:
        raise ImageError(
            f"{name}: unsupported image mode {mode!r} (supported: 8-bit greyscale/colour "
            "with or without alpha, palette, CMYK, YCbCr, 16-bit greyscale); convert it to "
            "8-bit RGB or L first"
        )


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """``image`` as mode "L" (``channels=1``) or "RGB" (``channels=3``).

    Greyscale sources become RGB by replicating the one channel; alpha is dropped.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.uint16)
        image = Image.fromarray((values >> 8).astype(np.uint8))
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def center_crop_resize(image: Image.Image, resolution: int) -> Image.Image:
    """The centred square of ``image`` (side = its shorter side), resized to ``resolution``².

    Lanczos resampling in both directions; when the shorter side already is ``resolution``
    the square is cut out unresampled. Works for modes "L", "RGB" and "F" (float, for the
    bundled faces).
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    if side == resolution:
        return image if width == height else image.crop(box)
    return image.resize((resolution, resolution), Image.Resampling.LANCZOS, box=box)


def to_uint8_chw(image: Image.Image) -> np.ndarray:
    """An "L" or "RGB" image as a ``uint8 [C, H, W]`` array."""
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.array(array.transpose(2, 0, 1), order="C")  # a writable copy


# v / 127.5 - 1 for every 8-bit v, rounded once from float64 (two float32 operations would
# round twice and miss the nearest float32 for some levels).
_LEVELS = (torch.arange(256, dtype=torch.float64) / 127.5 - 1.0).to(torch.float32)


def uint8_to_float(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` pixels in [0, 255] to ``float32`` in [-1, 1] (0 -> -1, 255 -> 1)."""
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    return _LEVELS.to(images.device)[images.long()]


def float_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`uint8_to_float`: clamps to [-1, 1], rounds to the nearest level."""
    scaled = (images.detach().to(torch.float32).clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(torch.uint8)


def image_grid(images: torch.Tensor, grid: Sequence[int]) -> np.ndarray:
    """Tiles ``images: [N, C, H, W]`` in [-1, 1] (C = 1 or 3) row by row into a
    ``uint8 [rows * H, cols * W, C]`` array; ``grid = (cols, rows)`` with ``cols * rows == N``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor [N, C, H, W], got {shape}")
    n, c, h, w = images.shape
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got shape {list(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point in [-1, 1], got {images.dtype}")
    if len(grid) != 2 or any(not isinstance(g, int) or g < 1 for g in grid):
        raise ValueError(f"grid must be (cols, rows) of positive ints, got {grid!r}")
    cols, rows = grid
    if cols * rows != n:
        raise ValueError(f"grid {cols}x{rows} holds {cols * rows} images, got {n}")
    pixels = float_to_uint8(images.cpu())  # [N, C, H, W]
    tiled = pixels.reshape(rows, cols, c, h, w).permute(0, 3, 1, 4, 2)
    return tiled.reshape(rows * h, cols * w, c).numpy()


def save_image_grid(
    images: torch.Tensor, path: str | os.PathLike, grid: Sequence[int] | None = None
) -> None:
    """Writes ``images: [N, C, H, W]`` in [-1, 1] (C = 1 or 3) as one PNG, ``grid = (cols,
    rows)`` images per row/column (default: one row). Values outside [-1, 1] are clamped."""
    if grid is None:
        grid = (images.shape[0] if isinstance(images, torch.Tensor) else 0, 1)
    array = image_grid(images, grid)
    Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(path, format="PNG")
