"""Projection of an image into a generator's latent space (Karras et al. 2020, "Analyzing and
Improving the Image Quality of StyleGAN", Appendix D), behind ``stylegan-fast project``.

Find ``w`` (one ``[w_dim]`` vector for every layer, ``space="w"``, or one per layer,
``space="w+"``) and the per-layer noise maps ``n_i`` such that ``G.synthesis(w, noise=n)``
matches the target. Written from the paper's description:

1. Start from the tracked average ``G.w_avg`` (from the mean of the sampled w's when that
   buffer is all zeros, a generator never trained). ``sigma_w`` is the root mean square
   Euclidean distance of mapped latents from their mean, over ``w_avg_samples`` (10k) draws
   of ``z`` (the paper's count: 1.6 s for a 512-d, 8-layer mapping on one CPU thread).
2. ``steps`` Adam steps (betas 0.9, 0.999) on ``w`` and the noise maps. At ``t = step /
   steps`` the learning rate is ``initial_lr * min(1, t / 0.05) * (1 - cos(pi * min(1, (1 -
   t) / 0.25))) / 2``: a linear ramp-up over the first 5 % and a cosine ramp-down over the
   last 25 % (:func:`learning_rate`).
3. Each step the synthesis sees ``w + N(0, I) * 0.05 * sigma_w * max(0, 1 - t / 0.75)^2``:
   latent noise that explores the space early and is gone after 75 % of the steps
   (:func:`latent_noise_scale`).
4. Loss = ``distance(image, target) + noise_reg * sum_i sum_j L_ij`` (:func:`noise_regularization`):
   the squared one-pixel autocorrelations of every noise map over a pyramid down to 8x8, so
   that the noise cannot carry the image's structure.
5. After each step every noise map is set back to zero mean and unit variance
   (:func:`normalize_noise_`).

``distance`` is a callable ``d(img0, img1) -> [N]`` on images in [-1, 1] (the PPL metric's
distance contract, e.g. a TorchScript LPIPS); without one, the pixel MSE.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..train import images as image_ops
from . import _common

SPACES = ("w", "w+")
RAMPUP = 0.05  # fraction of the steps over which the learning rate ramps up from 0
RAMPDOWN = 0.25  # fraction at the end over which it ramps down to 0 (cosine)
LATENT_NOISE = 0.05  # the latent noise at step 0, as a fraction of sigma_w
LATENT_NOISE_RAMP = 0.75  # fraction of the steps after which the latent noise is gone
# A non-square target is centre-cropped to its shorter side while that keeps at least half of
# the picture (aspect up to 2:1); a longer strip would lose most of what the user asked for.
MAX_ASPECT = 2.0

DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def learning_rate(step: int, steps: int, initial_lr: float = 0.1) -> float:
    """The learning rate of ``step`` in ``[0, steps)``: ``initial_lr`` times a linear ramp-up
    over the first :data:`RAMPUP` of the steps and a cosine ramp-down over the last
    :data:`RAMPDOWN` (0 at ``t = 0`` and as ``t -> 1``; ``t = step / steps``)."""
    t = step / steps
    down = min(1.0, (1.0 - t) / RAMPDOWN)
    down = 0.5 - 0.5 * math.cos(down * math.pi)
    return initial_lr * down * min(1.0, t / RAMPUP)


def latent_noise_scale(step: int, steps: int, w_std: float) -> float:
    """The standard deviation of the noise added to ``w`` at ``step``:
    ``LATENT_NOISE * w_std * max(0, 1 - t / LATENT_NOISE_RAMP)^2``, ``t = step / steps``."""
    t = step / steps
    return LATENT_NOISE * w_std * max(0.0, 1.0 - t / LATENT_NOISE_RAMP) ** 2


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """``sum_i sum_j L_ij`` over noise maps ``n_i: [N, 1, R, R]`` and their pyramid levels
    ``j``, with ``L_ij = mean(n * roll_x(n))^2 + mean(n * roll_y(n))^2`` (the autocorrelation
    at a one-pixel shift, the maps wrapping at their edges). Level 0 is the map itself; the
    next is the 2x2 average times 2 (which keeps white noise at unit variance), down to 8x8
    (smaller maps are taken as they are). White noise scores near 0; a constant map ``c``
    scores ``2 c^4 16^j`` at level ``j``. Returns a 0-d tensor."""
    total = torch.zeros([]) if not noise_maps else noise_maps[0].new_zeros([])
    for noise in noise_maps:
        while True:
            total = total + (noise * noise.roll(1, dims=3)).mean().square()
            total = total + (noise * noise.roll(1, dims=2)).mean().square()
            if noise.shape[-1] <= 8:
                break
            noise = F.avg_pool2d(noise, 2) * 2
    return total


def normalize_noise_(noise_maps: list[torch.Tensor]) -> None:
    """Sets every map in place to zero mean and unit (population) variance."""
    with torch.no_grad():
        for noise in noise_maps:
            noise.sub_(noise.mean()).div_(noise.square().mean().sqrt())


def psnr(image: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of ``image`` against ``target`` (both ``[N, C, H, W]`` in [-1, 1]; both
    clamped to it, as a PNG would be), in 8-bit terms: ``10 log10(255^2 / MSE)`` of the
    pixels mapped to [0, 255]."""
    diff = (image.detach().float().clamp(-1, 1) - target.detach().float().clamp(-1, 1)) * 127.5
    mse = diff.square().mean().item()
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def mse_distance(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel MSE per image: ``[N, C, H, W]`` x2 in [-1, 1] -> ``[N]``."""
    return (image - target).square().flatten(1).mean(1)


def w_statistics(
    G, num_samples: int = 10_000, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, float]:
    """``(mean [w_dim], sigma_w)`` of ``G.mapping`` over ``num_samples`` latents drawn on the
    CPU from ``generator`` (labels uniform one-hot for a conditional ``G``): ``sigma_w`` is
    the root mean square distance of the w's from their mean."""
    device = G.w_avg.device
    z = torch.randn([num_samples, G.z_dim], generator=generator)
    c = None
    if G.c_dim:
        classes = torch.randint(0, G.c_dim, [num_samples], generator=generator)
        c = F.one_hot(classes, G.c_dim).float().to(device)
    with torch.no_grad():
        w = G.mapping(z.to(device), c)[:, 0].float()
    mean = w.mean(0)
    return mean, float((w - mean).square().sum(1).mean().sqrt())


def has_tracked_w_avg(G) -> bool:
    """False when ``G.w_avg`` is all zeros: a generator never trained (training moves the
    buffer from its initial zeros). :func:`project` then starts from the sampled mean w."""
    return bool(G.w_avg.any())


def initial_noise(G, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Fresh standard-normal noise maps ``[1, 1, R, R]``, one per w layer, drawn on the CPU
    from ``generator``; none (``[]``) for a generator without noise inputs."""
    if not getattr(G.synthesis, "use_noise", True):
        return []
    return [torch.randn([1, 1, r, r], generator=generator) for r in noise_resolutions(G.num_ws)]


def noise_resolutions(num_ws: int) -> list[int]:
    """The side of each layer's noise map: layers 2i and 2i + 1 are at ``4 * 2**i``."""
    return [2 ** (i // 2 + 2) for i in range(num_ws)]


def render(
    G, w: torch.Tensor, noise: list[torch.Tensor] | None, noise_mode: str = "const"
) -> torch.Tensor:
    """``G.synthesis`` of ``w [1, num_ws, w_dim]`` with the given noise maps (None, or none
    for a generator without noise inputs: ``noise_mode`` decides), without gradients;
    ``[1, C, R, R]`` on the CPU. ``project``'s final image and ``generate --projected-w`` are
    both this call, so they agree bit for bit."""
    device = G.w_avg.device
    noise = [n.to(device) for n in noise] if noise else None
    with torch.no_grad():
        return G.synthesis(w.to(device), noise_mode, noise).cpu()


@dataclasses.dataclass
class ProjectionStep:
    """What the per-step callback sees. ``image``: the step's synthesis (with latent noise,
    before the update) ``[1, C, R, R]``; ``loss = distance + noise_reg * regularization``;
    ``psnr`` of ``image`` against the target; ``w`` (``[1, 1 or num_ws, w_dim]``) and
    ``noise`` (the maps): the optimised tensors after the update and the noise
    renormalisation, detached views that the next step overwrites (clone to keep them)."""

    step: int
    steps: int
    loss: float
    distance: float
    regularization: float
    psnr: float
    lr: float
    latent_noise: float
    image: torch.Tensor
    w: torch.Tensor
    noise: list[torch.Tensor]

    def record(self) -> dict:
        """The JSON-able numbers: step, loss, distance, regularization, psnr, lr,
        latent_noise."""
        names = ("step", "loss", "distance", "regularization", "psnr", "lr", "latent_noise")
        return {name: getattr(self, name) for name in names}


@dataclasses.dataclass
class ProjectionResult:
    """``w: [1, num_ws, w_dim]`` float32 (for ``space="w"`` one vector repeated on every
    layer); ``noise``: the optimised maps ``[1, 1, R, R]``, one per layer (none for a
    generator without noise inputs); ``image``:
    :func:`render` of the two, ``[1, C, R, R]``; ``psnr``: of ``image`` against the target;
    ``loss``: the final loss (no latent noise); ``history``: every step's
    :meth:`ProjectionStep.record`; ``w_std``: sigma_w."""

    w: torch.Tensor
    noise: list[torch.Tensor]
    image: torch.Tensor
    psnr: float
    loss: float
    history: list[dict]
    w_std: float


def _checked_distance(value) -> torch.Tensor:
    """The distance of one image pair as a 0-d tensor; ValueError for any other shape."""
    if not isinstance(value, torch.Tensor) or value.shape != (1,):
        got = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"project: the distance must return a tensor [N] = [1], got {got}")
    return value.sum()


def _check_project_args(G, target, steps, space, initial_lr, noise_reg, w_avg_samples):
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"project: steps must be an int >= 1, got {steps!r}")
    if space not in SPACES:
        raise ValueError(f"project: space must be one of {SPACES}, got {space!r}")
    for name, value in (("initial_lr", initial_lr), ("noise_reg", noise_reg)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"project: {name} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"project: {name} must be finite and >= 0, got {value}")
    if isinstance(w_avg_samples, bool) or not isinstance(w_avg_samples, int) or w_avg_samples < 2:
        raise ValueError(f"project: w_avg_samples must be an int >= 2, got {w_avg_samples!r}")
    shape = [1, G.img_channels, G.resolution, G.resolution]
    if not isinstance(target, torch.Tensor) or not target.is_floating_point():
        raise TypeError(f"project: target must be a floating-point tensor {shape} in [-1, 1]")
    if list(target.shape) != shape:
        raise ValueError(f"project: target must have shape {shape}, got {list(target.shape)}")


def project(
    G,
    target: torch.Tensor,
    *,
    steps: int = 1000,
    space: str = "w",
    initial_lr: float = 0.1,
    noise_reg: float = 1e5,
    w_avg_samples: int = 10_000,
    distance: DistanceFn | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[ProjectionStep], None] | None = None,
    progress: bool = False,
) -> ProjectionResult:
    """Projects ``target: [1, C, R, R]`` (in [-1, 1], ``G``'s channels and resolution) into
    ``G``'s W (``space="w"``) or W+ (``"w+"``) space, with the optimised noise maps (see the
    module docstring for the method).

    Args:
        G: a :class:`~stylegan_fast.models.Generator` (its parameters are not changed;
            without noise inputs only w is optimised).
        steps: optimisation steps (the paper: 1000).
        initial_lr: the peak Adam learning rate (0.1).
        noise_reg: weight of :func:`noise_regularization` (1e5).
        w_avg_samples: latents behind sigma_w (10k).
        distance: ``d(img0, img1) -> [N]`` on [-1, 1] images; None: :func:`mse_distance`.
        generator: every random draw (sigma_w's latents, the initial noise maps, the latent
            noise of each step) comes from it, on the CPU; None: torch's default generator.
        callback: called after every step with a :class:`ProjectionStep`.
        progress: show a tqdm bar.

    Returns:
        :class:`ProjectionResult` (tensors on the CPU).
    """
    _check_project_args(G, target, steps, space, initial_lr, noise_reg, w_avg_samples)
    distance = mse_distance if distance is None else distance
    device = G.w_avg.device
    target = target.to(device, torch.float32)
    w_mean, w_std = w_statistics(G, w_avg_samples, generator)
    start = (G.w_avg if has_tracked_w_avg(G) else w_mean).detach().float().view(1, 1, G.w_dim)
    w_opt = start.repeat(1, G.num_ws if space == "w+" else 1, 1).requires_grad_(True)
    noise = [n.to(device).requires_grad_(True) for n in initial_noise(G, generator)]
    optimizer = torch.optim.Adam([w_opt, *noise], lr=0.0, betas=(0.9, 0.999))
    requires_grad = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)  # gradients flow to w and the noise only
    history = []
    from tqdm.auto import tqdm

    try:
        with tqdm(total=steps, unit="step", disable=not progress, dynamic_ncols=True) as bar:
            for step in range(steps):
                lr = learning_rate(step, steps, initial_lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                sigma = latent_noise_scale(step, steps, w_std)
                w_noise = torch.randn(w_opt.shape, generator=generator).to(device) * sigma
                ws = (w_opt + w_noise).expand(1, G.num_ws, G.w_dim)
                image = G.synthesis(ws, "const" if noise else "none", noise or None)
                dist = _checked_distance(distance(image, target))
                reg = noise_regularization(noise)
                loss = dist + noise_reg * reg
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                normalize_noise_(noise)
                state = ProjectionStep(
                    step=step,
                    steps=steps,
                    loss=loss.item(),
                    distance=dist.item(),
                    regularization=reg.item(),
                    psnr=psnr(image, target),
                    lr=lr,
                    latent_noise=sigma,
                    image=image.detach().cpu(),
                    w=w_opt.detach(),
                    noise=[n.detach() for n in noise],
                )
                history.append(state.record())
                if callback is not None:
                    callback(state)
                bar.set_postfix(loss=f"{state.loss:.4g}", psnr=f"{state.psnr:.2f}", refresh=False)
                bar.update(1)
    finally:
        for parameter, flag in zip(G.parameters(), requires_grad):
            parameter.requires_grad_(flag)
    w = w_opt.detach().expand(1, G.num_ws, G.w_dim).float().cpu().contiguous()
    noise = [n.detach().float().cpu() for n in noise]
    image = render(G, w, noise, "const" if noise else "none")
    with torch.no_grad():
        final_loss = (
            _checked_distance(distance(image.to(device), target))
            + noise_reg * noise_regularization(noise)
        ).item()
    return ProjectionResult(
        w=w,
        noise=noise,
        image=image,
        psnr=psnr(image, target.cpu()),
        loss=final_loss,
        history=history,
        w_std=w_std,
    )


# --- targets ---------------------------------------------------------------------------------


def load_target(path, resolution: int, channels: int) -> tuple[torch.Tensor, list[str]]:
    """The image file at ``path`` as a projection target ``[1, channels, resolution,
    resolution]`` in [-1, 1], and the notices of what was converted (one line each).

    Conversions: colour <-> greyscale (greyscale replicated to RGB; RGB to luma), alpha
    dropped, 16-bit greyscale to 8 bits; a non-square image centre-cropped to its shorter side
    (refused beyond an aspect of :data:`MAX_ASPECT`); resized with Lanczos (antialiased when
    shrinking). Raises ``ValueError`` (``ImageError``) naming the file when it cannot be read
    or used.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise image_ops.ImageError(f"--target: cannot read {path} ({exc.strerror})") from None
    image = image_ops.open_image(data, f"--target: {path}")
    notices = []
    width, height = image.size
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise image_ops.ImageError(
            f"--target: {path} is {width}x{height}; a centre crop to a square would keep less "
            f"than half of it (aspect > {MAX_ASPECT:g}:1): crop it to the part to project first"
        )
    mode = "L" if channels == 1 else "RGB"
    if image.mode != mode:
        notices.append(f"converted {image.mode} to {mode} for a {channels}-channel network")
    converted = image_ops.to_channels(image, channels)
    if width != height:
        side = min(width, height)
        notices.append(f"centre-cropped {width}x{height} to {side}x{side}")
    if min(width, height) != resolution:
        side = min(width, height)
        notices.append(f"resized {side}x{side} to {resolution}x{resolution} (Lanczos)")
    resized = image_ops.center_crop_resize(converted, resolution)
    pixels = torch.from_numpy(image_ops.to_uint8_chw(resized))
    return image_ops.uint8_to_float(pixels)[None], notices


def target_png(target: torch.Tensor) -> np.ndarray:
    """``[1, C, R, R]`` in [-1, 1] -> ``uint8 [R, R, C]``."""
    return _common.to_pixels(target)[0]


def progress_frame(target: torch.Tensor, image: torch.Tensor) -> Image.Image:
    """The target and ``image`` (both ``[1, C, R, R]``) side by side, as a Pillow image."""
    return _common.to_pil(_common.compose([[target_png(target), target_png(image)]]))


# --- files -----------------------------------------------------------------------------------


def noise_key(layer: int) -> str:
    """The key of layer ``layer``'s map in ``projected_noise.npz``: ``noise00``, ``noise01``..."""
    return f"noise{layer:02d}"


def save_projection(outdir, result: ProjectionResult) -> tuple[Path, Path]:
    """Writes ``projected_w.npz`` (key ``w``: ``float32 [1, num_ws, w_dim]``) and
    ``projected_noise.npz`` (one ``float32 [1, 1, R, R]`` map per layer, keys
    :func:`noise_key`) to ``outdir``; returns the two paths."""
    outdir = Path(outdir)
    w_path, noise_path = outdir / "projected_w.npz", outdir / "projected_noise.npz"
    np.savez(w_path, w=result.w.numpy().astype(np.float32))
    np.savez(noise_path, **{noise_key(i): n.numpy() for i, n in enumerate(result.noise)})
    return w_path, noise_path


def _read_npz(path, option: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ValueError(f"{option}: no such file: {path}") from None
    except Exception as exc:  # numpy raises OSError, ValueError, zipfile errors...
        raise ValueError(f"{option}: {path} is not a .npz file ({type(exc).__name__})") from None


def load_projected_w(path, G) -> torch.Tensor:
    """``w [1, num_ws, w_dim]`` float32 from a ``projected_w.npz`` for ``G``; ValueError
    naming ``--projected-w`` for a missing file, a missing key ``w`` or a wrong shape."""
    data = _read_npz(path, "--projected-w")
    shape = (1, G.num_ws, G.w_dim)
    if "w" not in data:
        raise ValueError(f"--projected-w: {path} has no array 'w' (has {sorted(data)})")
    w = data["w"]
    if w.shape != shape or not np.issubdtype(w.dtype, np.floating):
        raise ValueError(
            f"--projected-w: 'w' must be a float array of shape [1, num_ws, w_dim] = "
            f"{list(shape)} for this network, got {w.dtype} {list(w.shape)}"
        )
    return torch.from_numpy(w.astype(np.float32))


def load_projected_noise(path, G) -> list[torch.Tensor]:
    """The per-layer noise maps ``[1, 1, R, R]`` float32 of a ``projected_noise.npz`` for
    ``G``; ValueError naming ``--projected-noise`` for a missing file, key or a wrong shape."""
    if not getattr(G.synthesis, "use_noise", True):
        raise ValueError("--projected-noise: this network has no noise inputs; leave it out")
    data = _read_npz(path, "--projected-noise")
    noise = []
    for layer, side in enumerate(noise_resolutions(G.num_ws)):
        key = noise_key(layer)
        if key not in data:
            raise ValueError(f"--projected-noise: {path} has no array {key!r} (layer {layer})")
        if data[key].shape != (1, 1, side, side):
            raise ValueError(
                f"--projected-noise: {key!r} must have shape {[1, 1, side, side]}, got "
                f"{list(data[key].shape)}"
            )
        noise.append(torch.from_numpy(data[key].astype(np.float32)))
    return noise
