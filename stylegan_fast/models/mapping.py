"""The mapping network f: z (and an optional label c) -> w, with the truncation trick."""

from __future__ import annotations

import math
import numbers

import torch

from ..nn import EqualLinear, FusedModule, pixel_norm
from .config import GeneratorConfig


def check_labels(owner: str, c, batch: int, c_dim: int, like: torch.Tensor):
    """``c``: None or an empty ``[N, 0]`` tensor when ``c_dim == 0``; else ``[N, c_dim]``
    floating (one-hot labels, or any embedding input). Returns ``c`` cast to ``like``'s dtype
    (or None)."""
    if c_dim == 0:
        if c is None or (isinstance(c, torch.Tensor) and c.numel() == 0):
            return None
        raise ValueError(
            f"{owner}: this model is unconditional (c_dim=0) but got labels c of shape "
            f"{list(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__}"
        )
    if c is None:
        raise ValueError(f"{owner}: this model is conditional (c_dim={c_dim}); pass c [N, {c_dim}]")
    if not isinstance(c, torch.Tensor) or not c.is_floating_point():
        raise TypeError(f"{owner}: c must be a floating-point tensor [N, {c_dim}] (e.g. one-hot)")
    if list(c.shape) != [batch, c_dim]:
        raise ValueError(
            f"{owner}: c must have shape [N, c_dim] = {[batch, c_dim]}, got {list(c.shape)}"
        )
    return c.to(like.dtype)


def check_truncation(owner: str, psi, cutoff, num_ws: int, allow_extrapolation: bool) -> None:
    if isinstance(psi, bool) or not isinstance(psi, numbers.Real) or not math.isfinite(psi):
        raise TypeError(f"{owner}: truncation_psi must be a finite real number, got {psi!r}")
    if not allow_extrapolation and not 0 <= psi <= 1:
        raise ValueError(
            f"{owner}: truncation_psi must be in [0, 1], got {psi} (pass "
            "allow_extrapolation=True to extrapolate away from w_avg)"
        )
    if cutoff is not None:
        if isinstance(cutoff, bool) or not isinstance(cutoff, numbers.Integral):
            raise TypeError(f"{owner}: truncation_cutoff must be an int or None, got {cutoff!r}")
        if not 0 <= cutoff <= num_ws:
            raise ValueError(
                f"{owner}: truncation_cutoff must be in [0, num_ws] = [0, {num_ws}], got {cutoff}"
            )


class MappingNetwork(FusedModule):
    """``z [N, z_dim]`` (and ``c [N, c_dim]``) -> ``w [N, num_ws, w_dim]``.

    StyleGAN1: labels embedded by a learned ``[c_dim, z_dim]`` matrix and concatenated to z;
    pixel norm ("normalize_latents"); ``mapping_layers`` equalized-lr dense layers with lrelu
    (gain sqrt(2) in the weights) at learning-rate multiplier ``mapping_lr_mul``; w broadcast to
    ``num_ws`` layers. Keeps ``w_avg [w_dim]``, the moving average of w (decay
    ``w_avg_beta``), updated when asked (training), used by the truncation trick.
    """

    def __init__(self, config: GeneratorConfig, *, impl: str = "auto"):
        super().__init__(impl)
        config.validate()
        self.z_dim, self.w_dim, self.c_dim = config.z_dim, config.w_dim, config.c_dim
        self.num_ws = config.num_ws
        self.w_avg_beta = float(config.w_avg_beta)
        if self.c_dim:
            # StyleGAN1's label embedding: a plain N(0, 1) matrix, no equalized lr.
            self.embed = torch.nn.Parameter(torch.randn(self.c_dim, self.z_dim))
        else:
            self.register_parameter("embed", None)
        widths = [self.z_dim * (2 if self.c_dim else 1)]
        widths += [config.mapping_dim] * (config.mapping_layers - 1) + [self.w_dim]
        self.layers = torch.nn.ModuleList(
            EqualLinear(
                fan_in,
                fan_out,
                lr_mul=config.mapping_lr_mul,
                gain=math.sqrt(2),
                activation="lrelu",
                act_gain=1.0,
                impl=impl,
            )
            for fan_in, fan_out in zip(widths[:-1], widths[1:])
        )
        self.register_buffer("w_avg", torch.zeros(self.w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
        *,
        allow_extrapolation: bool = False,
    ) -> torch.Tensor:
        """Maps latents to per-layer styles.

        Args:
            z: ``[N, z_dim]`` floating.
            c: ``[N, c_dim]`` labels (one-hot), or None for an unconditional model.
            truncation_psi: ``w = w_avg + psi * (w - w_avg)`` on the layers below the cutoff;
                in [0, 1] unless ``allow_extrapolation``. 1 leaves w untouched.
            truncation_cutoff: truncate layers ``< cutoff`` (None: all; StyleGAN1's inference
                default is 8).
            update_w_avg: move ``w_avg`` toward this batch's mean w (before truncation), as
                training does: ``w_avg = lerp(mean_w, w_avg, w_avg_beta)``.

        Returns:
            ``w: [N, num_ws, w_dim]`` in ``z``'s dtype (under autocast: autocast's).
        """
        name = "Generator.mapping"
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            raise TypeError(f"{name}: z must be a floating-point tensor [N, {self.z_dim}]")
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(
                f"{name}: z must have shape [N, z_dim] = [N, {self.z_dim}], got {list(z.shape)}"
            )
        check_truncation(name, truncation_psi, truncation_cutoff, self.num_ws, allow_extrapolation)
        c = check_labels(name, c, z.shape[0], self.c_dim, z)
        x = z
        if c is not None:
            x = torch.cat([z, c @ self.embed.to(z.dtype)], dim=1)
        x = pixel_norm(x)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            with torch.no_grad():
                batch_mean = x.detach().float().mean(dim=0)
                self.w_avg.copy_(batch_mean.lerp(self.w_avg.float(), self.w_avg_beta))
        w = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(w, self.w_avg, truncation_psi, truncation_cutoff)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"w_avg_beta={self.w_avg_beta:g}, impl={self.impl}"
        )


def truncate(
    w: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None
) -> torch.Tensor:
    """The truncation trick: ``w_avg + psi * (w - w_avg)`` on layers ``< cutoff`` (None: all).

    ``w: [N, num_ws, w_dim]``, ``w_avg: [w_dim]``; returns ``w`` itself when ``psi == 1`` or
    ``cutoff == 0`` (no arithmetic, so psi=1 is exactly the identity).
    """
    if psi == 1 or cutoff == 0:
        return w
    avg = w_avg.to(w.dtype)
    if cutoff is None or cutoff >= w.shape[1]:
        return torch.lerp(avg, w, psi)
    return torch.cat([torch.lerp(avg, w[:, :cutoff], psi), w[:, cutoff:]], dim=1)
