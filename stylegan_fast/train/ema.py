"""Exponential moving average of the generator's weights (the model that is sampled and
exported), with the decay given as a half-life in images so it does not depend on batch size."""

from __future__ import annotations

import math

import torch


def _check_positive(name: str, value, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def ema_beta(
    batch_size: int,
    half_life_images: float,
    images_seen: int | None = None,
    rampup: float | None = None,
) -> float:
    """The per-step decay ``beta = 0.5 ** (batch_size / half_life)``: after ``half_life``
    images, the weight of the average's old value has halved.

    With ``rampup`` (e.g. 0.05), ``half_life = min(half_life_images, images_seen * rampup)``,
    so early in training, when G changes fastest, the average follows it closely (beta = 0,
    a plain copy, at ``images_seen = 0``).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    half_life = _check_positive("half_life_images", half_life_images)
    if _check_positive("rampup", rampup, allow_none=True) is not None:
        if images_seen is None or isinstance(images_seen, bool) or images_seen < 0:
            raise ValueError(
                f"images_seen must be a non-negative int with rampup, got {images_seen!r}"
            )
        half_life = min(half_life, images_seen * rampup)
        if half_life == 0:
            return 0.0
    return 0.5 ** (batch_size / half_life)


@torch.no_grad()
def update_ema(ema_model: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """``p_ema <- p + beta * (p_ema - p)`` for every parameter; buffers (``w_avg``, ``lod``,
    fixed noise) are copied from ``model``, since they are not trained by gradients.

    Raises:
        ValueError: if the two models' parameter or buffer names differ, or beta is not in
            [0, 1].
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= 1:
        raise ValueError(f"beta must be a number in [0, 1], got {beta!r}")
    for kind, ema_items, items in (
        ("parameters", ema_model.named_parameters(), model.named_parameters()),
        ("buffers", ema_model.named_buffers(), model.named_buffers()),
    ):
        ema_items, items = dict(ema_items), dict(items)
        if ema_items.keys() != items.keys():
            difference = sorted(ema_items.keys() ^ items.keys())
            raise ValueError(f"EMA model and model have different {kind}: {difference[:5]}")
        for name, ema_value in ema_items.items():
            value = items[name].detach()
            if kind == "parameters":
                ema_value.copy_(value.lerp(ema_value.to(value.dtype), float(beta)))
            else:
                ema_value.copy_(value)


class GeneratorEMA:
    """The EMA schedule of a training run: ``update(G_ema, G, batch_size, images_seen)`` after
    each generator step.

    Args:
        half_life_images: images after which the old average's weight has halved
            (StyleGAN: 10k).
        rampup: None, or the ramp-up factor of :func:`ema_beta` (StyleGAN2-ADA uses 0.05).
    """

    def __init__(self, half_life_images: float = 10_000, rampup: float | None = None):
        self.half_life_images = _check_positive("half_life_images", half_life_images)
        self.rampup = _check_positive("rampup", rampup, allow_none=True)

    def beta(self, batch_size: int, images_seen: int) -> float:
        return ema_beta(batch_size, self.half_life_images, images_seen, self.rampup)

    def update(
        self, ema_model: torch.nn.Module, model: torch.nn.Module, batch_size: int, images_seen: int
    ) -> float:
        """Updates ``ema_model`` in place; returns the beta used."""
        beta = self.beta(batch_size, images_seen)
        update_ema(ema_model, model, beta)
        return beta

    def __repr__(self) -> str:
        return f"GeneratorEMA(half_life_images={self.half_life_images:g}, rampup={self.rampup})"
