"""Networks to fine-tune from a file (``train --init``): weights only, at a fixed
resolution.

The file is anything :func:`stylegan_fast.pretrained.load_networks` reads. The networks
trained are fixed-resolution copies of the file's (or of a given configuration: then every
tensor must fit, and the first one that does not is named). A progressive source must be
fully grown (``lod == 0``); its lower-resolution toRGB/fromRGB layers, used only while
fading in, are dropped. ``G`` starts from the file's ``G`` (else its ``G_ema``), ``G_ema``
from its ``G_ema`` (else ``G``); a file without a discriminator (a generator export, a
rosinality ``g_running``) gets a freshly initialised ``D``, with a warning.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping

import torch

from ..models import Discriminator, Generator
from ..models.config import DiscriminatorConfig, GeneratorConfig

# Layers a fixed-resolution copy of a progressive network has no place for.
_FADE_IN_ONLY = re.compile(r"(synthesis\.blocks\.\d+\.torgb|fromrgb\.\d+)\.(weight|bias)")
# What a discriminator shares with its generator's configuration.
_SHARED_FIELDS = (
    "resolution", "img_channels", "c_dim", "fmap_base", "fmap_decay", "fmap_max",
    "blur_filter", "fused_scale",
)  # fmt: skip


def load_weights(model: torch.nn.Module, state: Mapping, source: str, role: str) -> None:
    """``model.load_state_dict(state)`` with errors that name the first tensor that is missing
    or whose shape does not fit (in ``model``'s order), and tensors ``model`` has no place for
    (the fade-in toRGB/fromRGB of a progressive source excepted)."""
    ours = model.state_dict()
    for name, target in ours.items():
        if name not in state:
            raise ValueError(f"{source}: its {role} has no tensor {name!r}")
        if tuple(state[name].shape) != tuple(target.shape):
            raise ValueError(
                f"{source}: {role} tensor {name!r} is {list(state[name].shape)} in the file but "
                f"{list(target.shape)} in the network to train"
            )
    extra = [name for name in state if name not in ours and not _FADE_IN_ONLY.fullmatch(name)]
    if extra:
        raise ValueError(
            f"{source}: {role} tensors the network to train has no place for: {extra[:3]}"
        )
    model.load_state_dict({name: state[name] for name in ours})


def _fixed(config):
    return config.replace(progressive=False)


def _check_grown(net: torch.nn.Module, source: str, role: str) -> None:
    if getattr(net, "progressive", False) and float(net.lod) != 0:
        raise ValueError(
            f"{source}: its {role} is still growing (lod {float(net.lod):g}); fine-tuning "
            "starts from a fully grown network (lod 0)"
        )


def init_networks(
    path: str | os.PathLike,
    *,
    impl: str = "auto",
    g_config: GeneratorConfig | None = None,
    d_config: DiscriminatorConfig | None = None,
    resolution: int | None = None,
) -> dict[str, torch.nn.Module]:
    """``{"G", "D", "G_ema"}`` to fine-tune, initialised from the network file at ``path``.

    Args:
        path: an export, a checkpoint, an NVlabs pickle or a rosinality checkpoint.
        impl: the models' kernel backend.
        g_config, d_config: the networks to train (None: the file's, at a fixed resolution);
            the file's tensors must fit them.
        resolution: rosinality files only (see :func:`load_networks`).

    Raises:
        ValueError: naming the file and the first tensor that does not fit, or what is
            missing.
    """
    from . import load_networks

    source = os.fspath(path)
    networks = load_networks(path, impl=impl, resolution=resolution)
    g_source = networks["G"] if networks["G"] is not None else networks["G_ema"]
    ema_source = networks["G_ema"] if networks["G_ema"] is not None else networks["G"]
    if g_source is None:
        raise ValueError(f"{source}: holds no generator to fine-tune")
    for role, net in (("G", g_source), ("G_ema", ema_source), ("D", networks["D"])):
        if net is not None:
            _check_grown(net, source, role)
    g_config = g_config or _fixed(g_source.config)
    out = {}
    for role, net in (("G", g_source), ("G_ema", ema_source)):
        model = Generator(g_config, impl=impl)
        load_weights(model, net.state_dict(), source, role)
        out[role] = model
    if networks["D"] is not None:
        d_config = d_config or _fixed(networks["D"].config)
    elif d_config is None:
        shared = {name: getattr(g_config, name) for name in _SHARED_FIELDS}
        d_config = DiscriminatorConfig(**shared)
    out["D"] = Discriminator(d_config, impl=impl)
    if networks["D"] is not None:
        load_weights(out["D"], networks["D"].state_dict(), source, "D")
    else:
        warnings.warn(
            f"{source} holds no discriminator: D starts from random weights",
            stacklevel=2,
        )
    return out
