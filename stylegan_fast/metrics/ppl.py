"""Perceptual path length (Karras et al. 2019, section 4.2): how much the image changes,
perceptually, per unit step along interpolation paths in Z or W.

For latent endpoints ``z0, z1 ~ N(0, I)`` and ``t``, the sample is
``d(G(interp(t)), G(interp(t + eps))) / eps^2`` with ``eps = 1e-4``, ``interp`` the slerp of
the normalised ``z0, z1`` (space ``"z"``) or the lerp of their mapped ``w0, w1`` on every layer
(space ``"w"``), ``t ~ U(0, 1)`` ("full" paths) or ``t in {0, 1}`` (path "end" points), and
``d`` a perceptual distance (LPIPS with VGG16 in the paper, which squares feature
differences: hence ``eps^2``). PPL is the mean of the samples between their 1st and 99th
percentiles. As the paper does for faces, images are cropped to the central face region
first; with other data set ``crop=None``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..models.synthesis import noise_seed
from . import sources

__all__ = [
    "EPSILON",
    "PAPER_CROP",
    "PPLResult",
    "crop_images",
    "filter_outliers",
    "lerp",
    "path_distances",
    "perceptual_path_length",
    "slerp",
]

EPSILON = 1e-4
# (top, bottom, left, right) as fractions of the image: rows 3/8..7/8, columns 2/8..6/8, the
# face region of aligned FFHQ images, as in the official code.
PAPER_CROP = (3 / 8, 7 / 8, 2 / 8, 6 / 8)
SPACES = ("z", "w")
SAMPLINGS = ("full", "end")

DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _resolve_crop(crop) -> tuple[float, float, float, float] | None:
    if crop is None or crop is False:
        return None
    if crop is True or crop == "paper":
        return PAPER_CROP
    if (
        isinstance(crop, (tuple, list))
        and len(crop) == 4
        and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in crop)
        and 0 <= crop[0] < crop[1] <= 1
        and 0 <= crop[2] < crop[3] <= 1
    ):
        return tuple(float(c) for c in crop)
    raise ValueError(
        "crop must be None, 'paper', or (top, bottom, left, right) fractions with "
        f"0 <= top < bottom <= 1 and 0 <= left < right <= 1; got {crop!r}"
    )


def crop_images(images: torch.Tensor, crop="paper") -> torch.Tensor:
    """``images: [N, C, H, W]`` -> the crop box: rows ``int(top * H):int(bottom * H)``,
    columns ``int(left * W):int(right * W)``. ``crop``: None (no crop), ``"paper"``
    (:data:`PAPER_CROP`) or ``(top, bottom, left, right)`` fractions."""
    box = _resolve_crop(crop)
    if box is None:
        return images
    h, w = images.shape[-2:]
    top, bottom, left, right = (int(box[0] * h), int(box[1] * h), int(box[2] * w), int(box[3] * w))
    if bottom <= top or right <= left:
        raise ValueError(f"crop {box} of a {h}x{w} image is empty")
    return images[..., top:bottom, left:right]


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of ``a, b: [N, D]`` at ``t: [N]``:
    the unit vector at angle ``t * angle(a, b)`` from ``a`` towards ``b``."""
    a, b = _normalize(a), _normalize(b)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    angle = t.unsqueeze(-1) * torch.acos(cos)
    # The unit direction orthogonal to a in the plane of a and b.
    towards_b = _normalize(b - cos * a)
    return _normalize(a * torch.cos(angle) + towards_b * torch.sin(angle))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``a + t (b - a)`` with ``t: [N]`` broadcast over the trailing dimensions of ``a, b``."""
    return a + t.view(-1, *([1] * (a.ndim - 1))) * (b - a)


def _downsample_to(images: torch.Tensor, max_side: int | None) -> torch.Tensor:
    # As the official code: images larger than the distance network's input are
    # box-filtered down by an integer factor (1024 -> 256 averages 4x4 blocks).
    if max_side is None:
        return images
    factor = images.shape[-2] // max_side
    if factor > 1:
        images = F.avg_pool2d(images, factor)
    return images


def _check_generator(G) -> None:
    missing = [name for name in ("mapping", "synthesis", "z_dim") if not hasattr(G, name)]
    if missing:
        raise TypeError(
            f"PPL needs a generator with mapping(z, c), synthesis(w, noise_mode=...) and z_dim "
            f"(stylegan_fast.models.Generator); {type(G).__name__} lacks {', '.join(missing)}"
        )


def path_distances(
    G,
    z0: torch.Tensor,
    z1: torch.Tensor,
    t: torch.Tensor,
    distance_fn: DistanceFn,
    space: str = "w",
    epsilon: float = EPSILON,
    crop="paper",
    c: torch.Tensor | None = None,
    noise_mode: str = "const",
    truncation_psi: float = 1.0,
    max_distance_resolution: int | None = 256,
    distance_input_range: tuple[float, float] = (-1.0, 1.0),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The PPL samples ``d(G(interp(t)), G(interp(t + epsilon))) / epsilon^2`` of given paths.

    Args:
        G: a generator following the models contract: ``G.mapping(z, c) -> w [N, num_ws,
            w_dim]``, ``G.synthesis(w, noise_mode=...) -> [N, C, H, W]``, ``G.z_dim``.
        z0, z1: ``[N, z_dim]`` path endpoints in Z.
        t: ``[N]`` positions along the paths.
        distance_fn: ``d(img0, img1) -> [N]`` (e.g. LPIPS), given images mapped from
            ``[-1, 1]`` onto ``distance_input_range``.
        space: ``"z"`` (slerp of the normalised z; the mapping must ignore z's norm, as
            StyleGAN's pixel norm does) or ``"w"`` (lerp of the mapped w on every layer).
        epsilon: the step; the paper's 1e-4.
        crop: see :func:`crop_images`; applied before the distance.
        c: ``[N, c_dim]`` labels for a conditional G (one per path, both ends), or None.
        noise_mode: passed to ``G.synthesis``; ``"const"`` (default) gives both ends of a
            step the same noise, so the distance sees the latent step only.
        truncation_psi: passed to ``G.mapping`` when not 1 (the paper measures without).
        max_distance_resolution: images taller than this are average-pooled down by an
            integer factor first (the official 256 for LPIPS-VGG); None: never.
        distance_input_range: what ``distance_fn`` takes for black..white: ``(-1, 1)`` for
            richzhang's LPIPS, ``(0, 255)`` for NVlabs' VGG16 TorchScript.
        generator: ``noise_mode="random"``: the generator (of G's device) the noise is drawn
            from, passed as ``G.synthesis(..., generator=...)``; None: torch's default.

    Returns:
        ``[N]`` float64 samples on the CPU.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if not (isinstance(epsilon, (int, float)) and not isinstance(epsilon, bool) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    if not callable(distance_fn):
        raise TypeError(f"distance_fn must be callable, got {type(distance_fn).__name__}")
    _check_generator(G)
    if z0.ndim != 2 or z0.shape != z1.shape or z0.shape[1] != G.z_dim:
        raise ValueError(
            f"z0 and z1 must both be [N, z_dim] = [N, {G.z_dim}], got {list(z0.shape)} and "
            f"{list(z1.shape)}"
        )
    n = z0.shape[0]
    if t.shape != (n,):
        raise ValueError(f"t must be [N] = [{n}], got {list(t.shape)}")
    lo, hi = distance_input_range
    mapping_kwargs = {} if truncation_psi == 1 else {"truncation_psi": truncation_psi}
    c01 = None if c is None else torch.cat([c, c])
    with torch.no_grad():
        if space == "z":
            z_ends = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
            w_ends = G.mapping(z_ends, c01, **mapping_kwargs)
        else:
            w01 = G.mapping(torch.cat([z0, z1]), c01, **mapping_kwargs)
            w0, w1 = w01[:n], w01[n:]
            w_ends = torch.cat([lerp(w0, w1, t), lerp(w0, w1, t + epsilon)])
        noise = {"generator": generator} if noise_mode == "random" and generator else {}
        images = G.synthesis(w_ends, noise_mode=noise_mode, **noise)
        images = _downsample_to(crop_images(images, crop), max_distance_resolution)
        images = (images + 1.0) * ((hi - lo) / 2.0) + lo
        distance = distance_fn(images[:n], images[n:])
    if not isinstance(distance, torch.Tensor) or distance.shape != (n,):
        raise ValueError(
            f"distance_fn must return a tensor [N] = [{n}], got "
            + (
                f"shape {list(distance.shape)}"
                if isinstance(distance, torch.Tensor)
                else type(distance).__name__
            )
        )
    return distance.detach().to("cpu", torch.float64) / (epsilon * epsilon)


def filter_outliers(samples) -> np.ndarray:
    """The samples between the 1st percentile (rounded down to a sample) and the 99th
    (rounded up), inclusive, as the official code keeps."""
    samples = np.asarray(samples, dtype=np.float64)
    lo = np.percentile(samples, 1, method="lower")
    hi = np.percentile(samples, 99, method="higher")
    return samples[(samples >= lo) & (samples <= hi)]


@dataclasses.dataclass
class PPLResult:
    """``value``: the PPL (mean of ``kept``); ``samples``: every sample, in draw order."""

    value: float
    samples: np.ndarray
    kept: np.ndarray
    space: str
    sampling: str
    epsilon: float


def perceptual_path_length(
    G,
    distance_fn: DistanceFn,
    num_samples: int = 100_000,
    space: str = "w",
    sampling: str = "full",
    epsilon: float = EPSILON,
    crop="paper",
    batch_size: int = 16,
    seed: int = 0,
    noise_mode: str = "const",
    truncation_psi: float = 1.0,
    max_distance_resolution: int | None = 256,
    distance_input_range: tuple[float, float] = (-1.0, 1.0),
    progress: bool = False,
) -> PPLResult:
    """PPL of ``G`` over ``num_samples`` random paths (the paper: 100k).

    ``z0, z1 ~ N(0, I)``; ``sampling="full"``: ``t ~ U(0, 1)``, step ``[t, t + eps]``;
    ``"end"``: ``t`` is 0 or 1 with equal odds, step ``[0, eps]`` or ``[1 - eps, 1]`` (the
    steps stay on the path; by the symmetry of ``z0, z1`` both have the distribution of the
    official code's ``t = 0``). Labels of a conditional G (``G.c_dim > 0``) are uniform
    one-hot, one per path. Draws come from a CPU ``torch.Generator`` seeded with ``seed`` in
    fixed blocks, so a run is reproducible on any device and with any ``batch_size``; random
    noise (``noise_mode="random"``) from a generator on G's device seeded with
    ``noise_seed(seed)`` (reproducible for one device and batch size). Other
    arguments: see :func:`path_distances`.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    _check_generator(G)
    _resolve_crop(crop)
    from tqdm.auto import tqdm

    device, dtype = sources.model_device_dtype(G)
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    rng = torch.Generator().manual_seed(seed)
    noise_generator = torch.Generator(device).manual_seed(noise_seed(seed))

    def draw_block(size):
        z = torch.randn([size, 2, G.z_dim], generator=rng, dtype=torch.float64)
        if sampling == "full":
            t = torch.rand([size], generator=rng, dtype=torch.float64)
        else:
            t = torch.randint(0, 2, [size], generator=rng).to(torch.float64) * (1 - epsilon)
        labels = torch.randint(0, max(c_dim, 1), [size], generator=rng)
        return z, t, labels

    draws = sources.BlockDraws(draw_block)
    samples = []
    with tqdm(total=num_samples, unit="path", disable=not progress, leave=False) as bar:
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            z, t, labels = draws.take(n)
            c = F.one_hot(labels, c_dim).to(device, dtype) if c_dim > 0 else None
            samples.append(
                path_distances(
                    G,
                    z[:, 0].to(device, dtype),
                    z[:, 1].to(device, dtype),
                    t.to(device, dtype),
                    distance_fn,
                    space=space,
                    epsilon=epsilon,
                    crop=crop,
                    c=c,
                    noise_mode=noise_mode,
                    truncation_psi=truncation_psi,
                    max_distance_resolution=max_distance_resolution,
                    distance_input_range=distance_input_range,
                    generator=noise_generator,
                )
            )
            bar.update(n)
    samples = torch.cat(samples).numpy()
    if not np.isfinite(samples).all():
        raise ValueError("PPL: the distance network returned NaN or infinite distances")
    kept = filter_outliers(samples)
    return PPLResult(
        value=float(kept.mean()),
        samples=samples,
        kept=kept,
        space=space,
        sampling=sampling,
        epsilon=epsilon,
    )
