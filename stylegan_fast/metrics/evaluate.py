"""``evaluate(metric, G, ...)``: one named metric of a generator, as the ``metrics``
command will call it. Names follow the StyleGAN papers' code: ``fid50k``, ``fid10k``,
``kid50k``, ``pr50k3`` (precision and recall, k = 3), ``ppl_w``, ``ppl_z`` (full paths), and
``ppl_{w,z}{full,end}`` spelled out."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..models.synthesis import noise_seed
from . import kid, ppl, precision_recall, sources
from .features import FeatureNet, load_feature_net
from .fid import _real_and_generated, frechet_distance

__all__ = ["METRICS", "MetricSpec", "evaluate", "evaluate_many", "generator_images"]


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """``kind``: fid, kid, pr (precision and recall) or ppl; ``num``: generated images (fid,
    kid, pr; real images are capped at the same count) or paths (ppl);
    ``space``/``sampling``: PPL's."""

    kind: str
    num: int
    description: str
    space: str | None = None
    sampling: str | None = None


METRICS: dict[str, MetricSpec] = {
    "fid50k": MetricSpec("fid", 50_000, "FID, 50k generated vs up to 50k real images"),
    "fid10k": MetricSpec("fid", 10_000, "FID, 10k generated vs up to 10k real images"),
    "kid50k": MetricSpec("kid", 50_000, "KID, 50k generated vs up to 50k real images"),
    "pr50k3": MetricSpec(
        "pr", 50_000, "precision and recall (k=3 NN), 50k generated vs up to 50k real images"
    ),
    "ppl_w": MetricSpec("ppl", 100_000, "PPL in W, full paths", "w", "full"),
    "ppl_z": MetricSpec("ppl", 100_000, "PPL in Z, full paths", "z", "full"),
    "ppl_wfull": MetricSpec("ppl", 100_000, "PPL in W, full paths", "w", "full"),
    "ppl_wend": MetricSpec("ppl", 100_000, "PPL in W, path end points", "w", "end"),
    "ppl_zfull": MetricSpec("ppl", 100_000, "PPL in Z, full paths", "z", "full"),
    "ppl_zend": MetricSpec("ppl", 100_000, "PPL in Z, path end points", "z", "end"),
}


def generator_images(
    G,
    seed: int = 0,
    truncation_psi: float = 1.0,
    noise_mode: str = "random",
) -> Callable[[int], torch.Tensor]:
    """``generate(batch) -> [batch, 3, R, R]``: images of ``G(z, c, truncation_psi=...,
    noise_mode=...)`` without gradients, ``z ~ N(0, I)`` drawn from a CPU generator seeded with
    ``seed`` in fixed blocks (so the latents depend on neither the device nor the batch size),
    then cast to G's device and dtype; for a conditional G, uniform one-hot labels.

    With ``noise_mode="random"`` the synthesis noise comes from a generator on G's device
    seeded with :func:`noise_seed` ``(seed)``, passed as ``G(..., generator=...)``: the same
    seed, device and batch size give the same images (torch's global generators are not
    used)."""
    rng = torch.Generator().manual_seed(seed)
    device, dtype = sources.model_device_dtype(G)
    noise = {}
    if noise_mode == "random":
        noise["generator"] = torch.Generator(device).manual_seed(noise_seed(seed))
    c_dim = int(getattr(G, "c_dim", 0) or 0)

    def draw_block(size):
        z = torch.randn([size, G.z_dim], generator=rng)
        return z, torch.randint(0, max(c_dim, 1), [size], generator=rng)

    draws = sources.BlockDraws(draw_block)

    def generate(batch: int) -> torch.Tensor:
        z, labels = draws.take(batch)
        c = F.one_hot(labels, c_dim).to(device, dtype) if c_dim > 0 else None
        with torch.no_grad():
            return G(
                z.to(device, dtype),
                c,
                truncation_psi=truncation_psi,
                noise_mode=noise_mode,
                **noise,
            )

    return generate


def _check_positive(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
        raise ValueError(f"{name} must be None or an int >= 2, got {value!r}")


def evaluate(metric: str, G, *args, **options) -> dict:
    """Computes ``metric`` (a key of :data:`METRICS`) for the generator ``G``:
    ``evaluate_many([metric], G, ...)[metric]`` (see :func:`evaluate_many` for the other
    arguments, ``feature_net, data, distance_net, num, ...``, and the result)."""
    return evaluate_many([metric], G, *args, **options)[metric]


def evaluate_many(
    metrics: Sequence[str],
    G,
    feature_net: FeatureNet | torch.nn.Module | Callable | str | os.PathLike | None = None,
    data=None,
    distance_net: ppl.DistanceFn | None = None,
    num: int | None = None,
    num_real: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    data_key: str | None = None,
    truncation_psi: float = 1.0,
    noise_mode: str | None = None,
    crop="paper",
    max_distance_resolution: int | None = 256,
    distance_input_range: tuple[float, float] = (-1.0, 1.0),
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    num_workers: int = 0,
    progress: bool = False,
) -> dict[str, dict]:
    """Computes each of ``metrics`` (keys of :data:`METRICS`) for the generator ``G``.

    The feature metrics (FID, KID, PR) that draw the same numbers of images share one pass:
    the images are generated and embedded once (and the real statistics read once), so
    ``["fid50k", "kid50k", "pr50k3"]`` costs about what one of them does.

    Args:
        metrics: from ``fid50k``, ``fid10k``, ``kid50k``, ``pr50k3``, ``ppl_w``, ``ppl_z``
            (or ``ppl_wfull``, ``ppl_wend``, ``ppl_zfull``, ``ppl_zend``).
        G: a generator following the models contract (``G(z, c, truncation_psi=...,
            noise_mode=...)``, ``G.mapping``, ``G.synthesis``, ``G.z_dim``, ``G.c_dim``,
            ``G.resolution``); with random noise, ``G(...)`` and ``G.synthesis(...)`` also
            take ``generator=`` (a torch.Generator of G's device, seeded from ``seed``).
        feature_net: FID/KID/PR: see :func:`stylegan_fast.metrics.features.load_feature_net`.
        data: FID/KID/PR: the real images (see :func:`stylegan_fast.metrics.sources.real_batches`),
            at ``G.resolution``.
        distance_net: PPL: ``d(img0, img1) -> [N]`` (LPIPS-like).
        num: override the metrics' count of generated images or paths (for quick checks;
            the result then is not the named metric, and says so in ``num``).
        num_real: override the cap on real images (FID/KID/PR).
        batch_size: images per generator/feature call (default 64; PPL: 16 paths).
        seed: seeds the latents, the random noise (see :func:`generator_images`) and KID's
            subsets.
        cache_dir, data_key: the real-statistics cache (see ``real_feature_statistics``).
        truncation_psi: the papers measure at 1 (no truncation).
        noise_mode: default ``"random"`` for FID/KID/PR and ``"const"`` for PPL.
        crop, max_distance_resolution, distance_input_range: PPL's (see ``path_distances``).
        kid_subsets, kid_subset_size: KID's subsets (defaults 100 x 1000).

    Returns:
        ``{metric: result}`` in the order given; a result is ``{"metric", "value",
        "seconds", ...}`` plus, for FID/KID/PR, ``num_gen``, ``num_real``, ``cache_hit``
        (and ``std`` for KID; for PR ``value`` is the precision, and ``precision``,
        ``recall`` are given by name); for PPL, ``num_samples``, ``space``, ``sampling``,
        ``epsilon``, ``crop``. A feature metric's ``seconds`` include the pass it shares.
    """
    if isinstance(metrics, str) or not metrics:
        raise TypeError(f"metrics must be a non-empty list of metric names, got {metrics!r}")
    for metric in metrics:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    _check_positive("num", num)
    _check_positive("num_real", num_real)
    results = {}
    # Feature metrics grouped by (generated, real) counts: one pass per group.
    groups: dict[tuple[int, int], list[str]] = {}
    for metric in metrics:
        spec = METRICS[metric]
        count = num if num is not None else spec.num
        if spec.kind != "ppl":
            real_count = num_real if num_real is not None else spec.num
            groups.setdefault((count, real_count), []).append(metric)
            continue
        started = time.perf_counter()
        if distance_net is None:
            raise ValueError(f"{metric} needs distance_net, a perceptual distance d(a, b) -> [N]")
        result = ppl.perceptual_path_length(
            G,
            distance_net,
            num_samples=count,
            space=spec.space,
            sampling=spec.sampling,
            crop=crop,
            batch_size=batch_size or 16,
            seed=seed,
            noise_mode=noise_mode or "const",
            truncation_psi=truncation_psi,
            max_distance_resolution=max_distance_resolution,
            distance_input_range=distance_input_range,
            progress=progress,
        )
        results[metric] = {
            "metric": metric,
            "value": result.value,
            "num_samples": count,
            "space": spec.space,
            "sampling": spec.sampling,
            "epsilon": result.epsilon,
            "crop": crop,
            "seconds": time.perf_counter() - started,
        }

    for (count, real_count), names in groups.items():
        started = time.perf_counter()
        if feature_net is None or data is None:
            raise ValueError(f"{names[0]} needs feature_net (e.g. an Inception file) and data")
        net = load_feature_net(feature_net, batch_size=batch_size or 64)
        real, generated = _real_and_generated(
            generator_images(G, seed, truncation_psi, noise_mode or "random"),
            data,
            net,
            count,
            real_count,
            keep_features=any(METRICS[name].kind in ("kid", "pr") for name in names),
            image_size=getattr(G, "resolution", None),
            cache_dir=cache_dir,
            data_key=data_key,
            batch_size=net.batch_size,
            num_workers=num_workers,
            progress=progress,
        )
        shared = time.perf_counter() - started
        for name in names:
            started = time.perf_counter()
            out = {"metric": name}
            kind = METRICS[name].kind
            if kind == "fid":
                out["value"] = frechet_distance(real.mu, real.sigma, generated.mu, generated.sigma)
            elif kind == "kid":
                out["value"], out["std"] = kid.kernel_inception_distance(
                    real.features, generated.features, kid_subsets, kid_subset_size, seed
                )
            else:
                out["precision"], out["recall"] = precision_recall.precision_recall(
                    real.features, generated.features
                )
                out["value"] = out["precision"]
            out.update(
                num_gen=count,
                num_real=real.num,
                cache_hit=real.cache_hit,
                seconds=shared + time.perf_counter() - started,
            )
            results[name] = out
    return {metric: results[metric] for metric in metrics}
