"""NVlabs' StyleGAN1 network pickles (``karras2019stylegan-*.pkl``) as our models, without
TensorFlow and without running anything from the file.

File format (``dnnlib/tflib/network.py``, ``training/networks_stylegan.py``): the pickle is
``(G, D, Gs)``; each network is a ``dnnlib.tflib.network.Network`` whose state dict holds
``version`` (2-3), ``name``, ``static_kwargs`` (usually just ``num_channels``, ``resolution``,
``label_size``), ``components`` (G and Gs: ``mapping`` and ``synthesis``, networks themselves),
``build_module_src`` (source NVlabs' loader executes; we never do), ``build_func_name``
(``G_style``, ``G_mapping``, ``G_synthesis``, ``D_basic``) and ``variables``: ``(name, array)``
pairs named inside the network's own scope. Variables are named here as NVlabs'
``Network.vars`` names them: a component's variables carry its name as a prefix
(``G_mapping/Dense0/weight``, ``G_synthesis/8x8/Conv0_up/weight``), G's own are ``lod`` and
``dlatent_avg``.

The architecture comes from the variables' shapes (with ``networks_stylegan.py``'s defaults
for what shapes cannot tell, overridden by ``static_kwargs``); the weights map onto our layers
without rescaling, because both store them the same way (equalized learning rate: stored
weight times ``gain / sqrt(fan_in) * lrmul`` at run time, biases times ``lrmul``). Layouts
change: TF convolutions ``[k, k, in, out]`` become ``[out, in, k, k]``, dense ``[in, out]``
becomes ``[out, in]``; a fused up-convolution (``Conv0_up`` at 128² and above) is TF's
``conv2d_transpose`` with the padded-and-summed kernel, which equals nearest upsampling then a
convolution with the 3x3 kernel flipped in both axes, so that kernel is stored flipped.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..models import Discriminator, Generator
from ..models.config import DiscriminatorConfig, GeneratorConfig
from ._unpickle import NetworkStandIn, PickleRefused, restricted_load

__all__ = [
    "NVLabsNetwork",
    "PickleRefused",
    "VariableTarget",
    "describe_nvlabs_pickle",
    "discriminator_config_from_variables",
    "discriminator_from_nvlabs",
    "discriminator_variable_map",
    "generator_config_from_variables",
    "generator_from_nvlabs",
    "generator_variable_map",
    "is_trainable",
    "load_nvlabs_pickle",
    "networks_from_nvlabs",
    "official_manifest",
    "read_nvlabs_pickle",
]

_BUILD_FUNCS = {"G": "G_style", "D": "D_basic", "Gs": "G_style"}
_COMPONENT_FUNCS = {"mapping": "G_mapping", "synthesis": "G_synthesis"}
# Keyword arguments of networks_stylegan.py whose non-default values our models cannot
# reproduce: {name: the value our layers implement}.
_FIXED_KWARGS = {
    "use_styles": True,
    "const_input_layer": True,
    "use_pixel_norm": False,
    "use_instance_norm": True,
    "nonlinearity": "lrelu",
    "mapping_nonlinearity": "lrelu",
    "use_wscale": True,
    "normalize_latents": True,
}
_NOT_TRAINABLE = re.compile(r"(^|/)(lod|dlatent_avg|noise\d+)$")
_SHOWN_NAMES = 8
# The first object of a legacy (non-zip) torch.save file.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def is_trainable(name: str) -> bool:
    """Whether NVlabs' graph trains variable ``name`` (``lod``, ``dlatent_avg`` and the
    ``noise<i>`` inputs are not trained; NVlabs' parameter counts leave them out)."""
    return _NOT_TRAINABLE.search(name) is None


def _names(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_SHOWN_NAMES])
    return shown + (f" (and {len(names) - _SHOWN_NAMES} more)" if len(names) > _SHOWN_NAMES else "")


# --------------------------------------------------------------------------------------------
# Reading the pickle.


@dataclasses.dataclass
class NVLabsNetwork:
    """One network of the pickle, flattened.

    Attributes:
        name: the network's name (``G``, ``D``, ``Gs``).
        build_func_name: ``G_style`` or ``D_basic``.
        static_kwargs: the network's keyword arguments merged with its components'.
        variables: ``{name: array}`` named as NVlabs' ``Network.vars`` (components prefixed
            by their names, e.g. ``G_mapping/Dense0/weight``).
        version: the pickle state version (2 or 3).
    """

    name: str
    build_func_name: str
    static_kwargs: dict
    variables: dict[str, np.ndarray]
    version: int

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(value.shape) for name, value in self.variables.items()}


def _network_state(what: str, role: str, obj) -> dict:
    if not isinstance(obj, NetworkStandIn) or not isinstance(getattr(obj, "state", None), dict):
        found = type(obj).__name__ if not isinstance(obj, NetworkStandIn) else "an empty Network"
        raise PickleRefused(f"{what}: {role} is {found}, not a dnnlib.tflib.network.Network")
    state = obj.state
    required = ("version", "name", "static_kwargs", "build_func_name", "variables")
    missing = [key for key in required if key not in state]
    if missing:
        raise PickleRefused(f"{what}: {role}'s state lacks {', '.join(missing)}")
    return state


def _check_build(what: str, role: str, state: dict, expected: str) -> None:
    version, func = state["version"], state["build_func_name"]
    if version not in (2, 3):
        raise PickleRefused(
            f"{what}: {role} is a version-{version!r} network built by {func!r}; only StyleGAN1 "
            "pickles (version 2-3, G_style/D_basic) are supported (StyleGAN2 pickles are "
            "version 4)"
        )
    if func != expected:
        raise PickleRefused(
            f"{what}: {role} is built by {func!r}; a StyleGAN1 pickle's is {expected!r}"
        )


def _own_variables(what: str, role: str, state: dict, prefix: str, into: dict) -> None:
    variables = state["variables"]
    if not isinstance(variables, (list, tuple)):
        raise PickleRefused(f"{what}: {role}'s variables are a {type(variables).__name__}")
    for item in variables:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise PickleRefused(f"{what}: {role} has a variable entry that is not (name, array)")
        name, value = prefix + item[0], item[1]
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            found = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise PickleRefused(f"{what}: {role} variable {name} holds {found}, not numbers")
        if name in into:
            raise PickleRefused(f"{what}: {role} has variable {name} twice")
        into[name] = value


def _flatten(what: str, role: str, obj) -> NVLabsNetwork:
    state = _network_state(what, role, obj)
    _check_build(what, role, state, _BUILD_FUNCS[role])
    kwargs = dict(state["static_kwargs"]) if isinstance(state["static_kwargs"], dict) else None
    if kwargs is None:
        raise PickleRefused(f"{what}: {role}'s static_kwargs are not a dict")
    variables: dict[str, np.ndarray] = {}
    _own_variables(what, role, state, "", variables)
    components = state.get("components") or {}
    if not isinstance(components, dict):
        raise PickleRefused(f"{what}: {role}'s components are not a dict")
    if role == "D" and components:
        raise PickleRefused(f"{what}: D has components {_names(components)}; D_basic has none")
    if role != "D" and set(components) != set(_COMPONENT_FUNCS):
        raise PickleRefused(
            f"{what}: {role}'s components are {_names(map(str, components))}; "
            "G_style's are mapping, synthesis"
        )
    for key in sorted(components):
        sub_role = f"{role}.{key}"
        sub = _network_state(what, sub_role, components[key])
        _check_build(what, sub_role, sub, _COMPONENT_FUNCS[key])
        _own_variables(what, sub_role, sub, f"{sub['name']}/", variables)
        if isinstance(sub["static_kwargs"], dict):
            kwargs = {**sub["static_kwargs"], **kwargs}
    return NVLabsNetwork(
        name=str(state["name"]),
        build_func_name=state["build_func_name"],
        static_kwargs=kwargs,
        variables=variables,
        version=state["version"],
    )


def read_nvlabs_pickle(path: str | Path) -> dict[str, NVLabsNetwork]:
    """Reads a StyleGAN1 network pickle with the restricted unpickler.

    Returns:
        ``{"G": NVLabsNetwork, "D": ..., "Gs": ...}``.

    Raises:
        PickleRefused (a ValueError): anything but a ``(G, D, Gs)`` tuple of StyleGAN1
            networks, or a file the restricted unpickler refuses; one line naming what was
            found.
    """
    what = str(path)
    obj = restricted_load(path, what=what)
    if isinstance(obj, int) and obj == _TORCH_LEGACY_MAGIC:
        raise PickleRefused(f"{what}: a legacy torch.save file, not a network pickle")
    if not isinstance(obj, tuple) or len(obj) != 3:
        found = f"a {len(obj)}-tuple" if isinstance(obj, tuple) else f"a {type(obj).__name__}"
        raise PickleRefused(
            f"{what}: the pickle holds {found}; a StyleGAN1 network pickle holds (G, D, Gs)"
        )
    return {role: _flatten(what, role, item) for role, item in zip(("G", "D", "Gs"), obj)}


# --------------------------------------------------------------------------------------------
# Architecture from shapes.


def _shape(owner: str, shapes: Mapping, name: str, ndim: int) -> tuple[int, ...]:
    if name not in shapes:
        raise ValueError(f"{owner}: missing variable {name}")
    shape = tuple(shapes[name])
    if len(shape) != ndim:
        raise ValueError(f"{owner}: variable {name} has shape {list(shape)}, expected {ndim}-d")
    return shape


def _resolution(owner: str, shapes: Mapping, prefix: str, kwargs: Mapping) -> int:
    found = [
        int(m.group(1))
        for name in shapes
        if (m := re.match(rf"^{re.escape(prefix)}(\d+)x(\d+)/", name)) and m.group(1) == m.group(2)
    ]
    if not found:
        raise ValueError(f"{owner}: no {prefix}<R>x<R>/ block variables found")
    resolution = max(found)
    if resolution < 4 or resolution & (resolution - 1):
        raise ValueError(f"{owner}: block {resolution}x{resolution} is not a power of two >= 4")
    if "resolution" in kwargs and kwargs["resolution"] != resolution:
        raise ValueError(
            f"{owner}: static_kwargs say resolution {kwargs['resolution']} but the variables "
            f"have blocks up to {resolution}x{resolution}"
        )
    return resolution


def _channel_schedule(owner: str, channels: dict[int, int], kwargs: Mapping):
    """``(fmap_base, fmap_decay, fmap_max)`` with ``min(int(base / 2 ** (s * decay)), max) ==
    channels[s]`` for every stage ``s`` found (``static_kwargs`` values win where given)."""
    found = ", ".join(f"{2 ** (s + 1)}²: {c}" for s, c in sorted(channels.items()))
    decays = [float(kwargs["fmap_decay"])] if "fmap_decay" in kwargs else [1.0, 0.5, 2.0, 1.5]
    fmap_max = int(kwargs.get("fmap_max", max(channels.values())))
    for decay in decays:
        low, high = 1.0, math.inf
        for stage, count in channels.items():
            factor = 2.0 ** (stage * decay)
            low = max(low, count * factor)
            if count < fmap_max:
                high = min(high, (count + 1) * factor)
        if "fmap_base" in kwargs:
            candidates = [int(kwargs["fmap_base"])]
        else:
            # The powers of two in range first (the official 8192, 16384, ...), then the least.
            powers = [2**k for k in range(64) if low <= 2**k < high]
            candidates = powers + [math.ceil(low) + i for i in range(3)]
        for base in candidates:
            if all(min(int(base / 2.0 ** (s * decay)), fmap_max) == c for s, c in channels.items()):
                return base, decay, fmap_max
    raise ValueError(
        f"{owner}: no fmap_base/fmap_decay/fmap_max reproduce the channels found ({found})"
    )


def _architecture(owner: str, shapes: Mapping, kwargs: Mapping, prefix: str, channel_sources):
    """The fields G's and D's configs share (resolution, fmap_*, blur, fused_scale,
    progressive), after refusing the options our layers do not implement.

    ``prefix``: where the ``<R>x<R>/`` block scopes are; ``channel_sources(log2)``: ``{stage:
    (variable, its ndim, axis)}`` whose sizes are the channels ``nf(stage)``."""
    for key, expected in _FIXED_KWARGS.items():
        if key in kwargs and kwargs[key] != expected:
            raise ValueError(
                f"{owner}: {key}={kwargs[key]!r} is not supported (our layers implement "
                f"{key}={expected!r})"
            )
    blur = kwargs.get("blur_filter", [1, 2, 1])
    if blur is not None and not isinstance(blur, (list, tuple)):
        raise ValueError(f"{owner}: blur_filter={blur!r} is not a list of taps or None")
    fused = kwargs.get("fused_scale", "auto")
    if fused not in ("auto", True, False):
        raise ValueError(f"{owner}: fused_scale={fused!r} is not one of 'auto', True, False")
    resolution = _resolution(owner, shapes, prefix, kwargs)
    channels = {
        stage: _shape(owner, shapes, name, ndim)[axis]
        for stage, (name, ndim, axis) in channel_sources(resolution.bit_length() - 1).items()
    }
    fmap_base, fmap_decay, fmap_max = _channel_schedule(owner, channels, kwargs)
    return dict(
        resolution=resolution,
        fmap_base=fmap_base,
        fmap_decay=fmap_decay,
        fmap_max=fmap_max,
        blur_filter=tuple(blur) if blur else (1,),
        fused_scale=fused,
        progressive=True,
    )


def generator_config_from_variables(
    shapes: Mapping[str, tuple[int, ...]], static_kwargs: Mapping | None = None
) -> GeneratorConfig:
    """The :class:`GeneratorConfig` of a ``G_style`` network from its variables' shapes.

    Args:
        shapes: ``{name: shape}`` named as :attr:`NVLabsNetwork.variables`.
        static_kwargs: the network's ``static_kwargs`` (they win over the defaults of
            ``networks_stylegan.py`` for what shapes cannot tell: ``mapping_lrmul``,
            ``dlatent_avg_beta``, ``blur_filter``, ``fused_scale``).

    Returns:
        A progressive config (every ``ToRGB_lod*`` has a layer to load into).

    Raises:
        ValueError: naming the missing variable, the unsupported option or the channel
            counts no schedule reproduces.
    """
    owner = "StyleGAN1 generator"
    kwargs = dict(static_kwargs or {})

    def channel_sources(log2):  # stage -> (variable, ndim, axis): the layers at 2 ** (stage + 1)
        sources = {1: ("G_synthesis/4x4/Const/const", 4, 1)}
        for k in range(3, log2 + 1):
            sources[k - 1] = (f"G_synthesis/{2**k}x{2**k}/Conv1/weight", 4, 3)
        return sources

    shared = _architecture(owner, shapes, kwargs, "G_synthesis/", channel_sources)
    img_channels = _shape(owner, shapes, "G_synthesis/ToRGB_lod0/weight", 4)[3]
    c_dim, z_dim = 0, None
    if "G_mapping/LabelConcat/weight" in shapes:
        c_dim, z_dim = _shape(owner, shapes, "G_mapping/LabelConcat/weight", 2)
    layers = 0
    while f"G_mapping/Dense{layers}/weight" in shapes:
        layers += 1
    if layers == 0:
        raise ValueError(f"{owner}: missing variable G_mapping/Dense0/weight")
    fan_in, mapping_dim = _shape(owner, shapes, "G_mapping/Dense0/weight", 2)
    w_dim = _shape(owner, shapes, f"G_mapping/Dense{layers - 1}/weight", 2)[1]
    if z_dim is None:
        z_dim = fan_in
    elif fan_in != 2 * z_dim:
        raise ValueError(
            f"{owner}: G_mapping/Dense0/weight takes {fan_in} inputs; z and the label "
            f"embedding give {2 * z_dim}"
        )
    if "label_size" in kwargs and kwargs["label_size"] != c_dim:
        raise ValueError(
            f"{owner}: static_kwargs say label_size {kwargs['label_size']} but the variables "
            f"give {c_dim}"
        )
    beta = kwargs.get("dlatent_avg_beta", 0.995)
    return GeneratorConfig(
        **shared,
        img_channels=img_channels,
        c_dim=c_dim,
        z_dim=z_dim,
        w_dim=w_dim,
        mapping_layers=layers,
        mapping_dim=mapping_dim if layers > 1 else w_dim,
        mapping_lr_mul=float(kwargs.get("mapping_lrmul", 0.01)),
        w_avg_beta=1.0 if beta is None else float(beta),
        use_noise="G_synthesis/4x4/Const/Noise/weight" in shapes,
    )


def discriminator_config_from_variables(
    shapes: Mapping[str, tuple[int, ...]],
    static_kwargs: Mapping | None = None,
    *,
    label_size: int | None = None,
) -> DiscriminatorConfig:
    """The :class:`DiscriminatorConfig` of a ``D_basic`` network from its variables' shapes.

    Args:
        shapes: ``{name: shape}``.
        static_kwargs: D's ``static_kwargs`` (``label_size``, ``mbstd_group_size``, ...).
        label_size: the label width when neither ``static_kwargs`` nor the shapes tell it
            (``Dense1`` has one output both for no labels and for one label): the generator's.

    Returns:
        A progressive config (every ``FromRGB_lod*`` has a layer to load into).
    """
    owner = "StyleGAN1 discriminator"
    kwargs = dict(static_kwargs or {})

    def channel_sources(log2):  # stage 0: Dense0's width; then each fromRGB's
        sources = {0: ("4x4/Dense0/weight", 2, 1)}
        for k in range(2, log2 + 1):
            sources[k - 1] = (f"FromRGB_lod{log2 - k}/weight", 4, 3)
        return sources

    shared = _architecture(owner, shapes, kwargs, "", channel_sources)
    img_channels = _shape(owner, shapes, "FromRGB_lod0/weight", 4)[2]
    outputs = _shape(owner, shapes, "4x4/Dense1/weight", 2)[1]
    if "label_size" in kwargs:
        c_dim = int(kwargs["label_size"])
    elif outputs > 1:
        c_dim = outputs
    else:  # one output: no labels, or one label; the generator tells which
        c_dim = label_size or 0
    if outputs != max(c_dim, 1):
        raise ValueError(
            f"{owner}: 4x4/Dense1/weight has {outputs} outputs; label_size {c_dim} needs "
            f"{max(c_dim, 1)}"
        )
    conv_in, conv_out = _shape(owner, shapes, "4x4/Conv/weight", 4)[2:]
    stddev_features = conv_in - conv_out
    group = int(kwargs.get("mbstd_group_size", 4))
    if stddev_features < 0 or (stddev_features == 0) != (group <= 1):
        raise ValueError(
            f"{owner}: 4x4/Conv/weight takes {conv_in} channels from {conv_out}, which does not "
            f"fit minibatch stddev with group size {group}"
        )
    return DiscriminatorConfig(
        **shared,
        img_channels=img_channels,
        c_dim=c_dim,
        mbstd_group_size=group if stddev_features else 1,
        mbstd_num_features=max(stddev_features, 1),
    )


# --------------------------------------------------------------------------------------------
# Variable <-> parameter maps.


@dataclasses.dataclass(frozen=True)
class VariableTarget:
    """Where one NVlabs variable goes: our ``state_dict`` key (None: nowhere) and ``layout``,
    how the TF array becomes our tensor: ``"same"`` (as is), ``"dense"`` (``[in, out] ->
    [out, in]``), ``"conv"`` (``[k, k, in, out] -> [out, in, k, k]``), ``"conv_flipped"`` (as
    ``"conv"``, then both spatial axes reversed: the fused up-convolution) or ``"ignored"``
    (consumed, for the reason ``why``; our model keeps no copy)."""

    key: str | None
    layout: str
    why: str = ""


def _layer_entries(out: dict, scope: str, ours: str, use_noise: bool) -> None:
    """A synthesis layer's epilogue: noise strength, bias and the style dense layer."""
    if use_noise:
        out[f"{scope}/Noise/weight"] = VariableTarget(f"{ours}.epilogue.noise_strength", "same")
    out[f"{scope}/bias"] = VariableTarget(f"{ours}.epilogue.bias", "same")
    out[f"{scope}/StyleMod/weight"] = VariableTarget(
        f"{ours}.epilogue.style.affine.weight", "dense"
    )
    out[f"{scope}/StyleMod/bias"] = VariableTarget(f"{ours}.epilogue.style.affine.bias", "same")


def generator_variable_map(config: GeneratorConfig) -> dict[str, VariableTarget]:
    """``{NVlabs variable name: VariableTarget}`` for a ``G_style`` network of ``config``
    (progressive: every ``ToRGB_lod*``), covering every entry of our ``state_dict``."""
    out: dict[str, VariableTarget] = {
        "lod": VariableTarget("synthesis.lod", "same"),
        "dlatent_avg": VariableTarget("mapping.w_avg", "same"),
        # G_style assigns its own lod to the synthesis network's before every run.
        "G_synthesis/lod": VariableTarget(None, "ignored", "G_style overwrites it with G's lod"),
    }
    if config.c_dim:
        out["G_mapping/LabelConcat/weight"] = VariableTarget("mapping.embed", "same")
    for i in range(config.mapping_layers):
        out[f"G_mapping/Dense{i}/weight"] = VariableTarget(f"mapping.layers.{i}.weight", "dense")
        out[f"G_mapping/Dense{i}/bias"] = VariableTarget(f"mapping.layers.{i}.bias", "same")
    log2 = config.resolution_log2
    for i, k in enumerate(range(2, log2 + 1)):
        res, block = 2**k, f"synthesis.blocks.{i}"
        scopes = (
            ("4x4/Const", "4x4/Conv") if k == 2 else (f"{res}x{res}/Conv0_up", f"{res}x{res}/Conv1")
        )
        for j, scope in enumerate(scopes):
            layer = f"{block}.layer{j}"
            if config.use_noise:
                noise = f"G_synthesis/noise{2 * i + j}"
                out[noise] = VariableTarget(f"{layer}.noise_const", "same")
            _layer_entries(out, f"G_synthesis/{scope}", layer, config.use_noise)
        if k == 2:
            out["G_synthesis/4x4/Const/const"] = VariableTarget(f"{block}.const", "same")
            out["G_synthesis/4x4/Conv/weight"] = VariableTarget(
                f"{block}.layer1.conv.weight", "conv"
            )
        else:
            # TF's fused form is conv2d_transpose with the summed kernel, unflipped: nearest
            # upsampling then the flipped kernel (our layers, fused or not, take that kernel).
            up = "conv_flipped" if config.fused_at(res) else "conv"
            out[f"G_synthesis/{res}x{res}/Conv0_up/weight"] = VariableTarget(
                f"{block}.layer0.conv.weight", up
            )
            out[f"G_synthesis/{res}x{res}/Conv1/weight"] = VariableTarget(
                f"{block}.layer1.conv.weight", "conv"
            )
        out[f"G_synthesis/ToRGB_lod{log2 - k}/weight"] = VariableTarget(
            f"{block}.torgb.weight", "conv"
        )
        out[f"G_synthesis/ToRGB_lod{log2 - k}/bias"] = VariableTarget(f"{block}.torgb.bias", "same")
    return out


def discriminator_variable_map(config: DiscriminatorConfig) -> dict[str, VariableTarget]:
    """``{NVlabs variable name: VariableTarget}`` for a ``D_basic`` network of ``config``
    (progressive: every ``FromRGB_lod*``), covering every entry of our ``state_dict``."""
    out: dict[str, VariableTarget] = {"lod": VariableTarget("lod", "same")}
    log2 = config.resolution_log2

    def conv_and_bias(name, key):
        out[f"{name}/weight"] = VariableTarget(f"{key}.weight", "conv")
        out[f"{name}/bias"] = VariableTarget(f"{key}.bias", "same")

    for i, k in enumerate(range(2, log2 + 1)):
        res = 2**k
        conv_and_bias(f"FromRGB_lod{log2 - k}", f"fromrgb.{i}")
        if k > 2:
            conv_and_bias(f"{res}x{res}/Conv0", f"blocks.{i}.conv0")
            # The fused down-convolution is a plain stride-2 conv of the summed kernel in TF
            # and here alike: no flip.
            conv_and_bias(f"{res}x{res}/Conv1_down", f"blocks.{i}.conv1")
    conv_and_bias("4x4/Conv", "blocks.0.conv")
    for name, key in (("4x4/Dense0", "blocks.0.fc"), ("4x4/Dense1", "blocks.0.out")):
        out[f"{name}/weight"] = VariableTarget(f"{key}.weight", "dense")
        out[f"{name}/bias"] = VariableTarget(f"{key}.bias", "same")
    return out


def _to_ours(value: np.ndarray, layout: str) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(value, dtype=np.float32))
    if layout == "dense":
        tensor = tensor.t()
    elif layout in ("conv", "conv_flipped"):
        tensor = tensor.permute(3, 2, 0, 1)
        if layout == "conv_flipped":
            tensor = tensor.flip([2, 3])
    return tensor.contiguous()


def _tf_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """Our tensor's shape in the TF layout ``layout`` converts from."""
    if layout == "dense":
        return (shape[1], shape[0])
    if layout in ("conv", "conv_flipped"):
        return (shape[2], shape[3], shape[1], shape[0])
    return tuple(shape)


def _check_variables(
    owner: str,
    shapes: Mapping[str, tuple[int, ...]],
    targets: dict[str, VariableTarget],
    expected: Mapping[str, tuple[int, ...]],
) -> None:
    """Every variable must have a target (and every target a variable) of the right shape;
    ``expected``: our ``state_dict``'s shapes."""
    unknown, missing = set(shapes) - set(targets), set(targets) - set(shapes)
    if unknown or missing:
        parts = [f"unknown variables {_names(unknown)}"] if unknown else []
        parts += [f"missing variables {_names(missing)}"] if missing else []
        raise ValueError(f"{owner}: {'; '.join(parts)}")
    covered = {t.key for t in targets.values() if t.key is not None}
    if covered != set(expected):  # pragma: no cover - a bug in the variable maps
        raise RuntimeError(f"{owner}: variable map misses {_names(set(expected) - covered)}")
    for name, target in targets.items():
        if target.layout != "ignored":
            want = _tf_shape(expected[target.key], target.layout)
            if tuple(shapes[name]) != want:
                raise ValueError(
                    f"{owner}: variable {name} has shape {list(shapes[name])}, expected "
                    f"{list(want)}"
                )


def _shapes_of(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _load(owner: str, model, variables: Mapping[str, np.ndarray], targets):
    """Checks ``variables`` against ``targets`` and loads them into ``model``."""
    shapes = {name: tuple(value.shape) for name, value in variables.items()}
    _check_variables(owner, shapes, targets, _shapes_of(model))
    state = {
        t.key: _to_ours(variables[name], t.layout)
        for name, t in targets.items()
        if t.layout != "ignored"
    }
    try:
        model.load_state_dict(state)
    except ValueError as error:  # e.g. a lod outside [0, max_lod]
        raise ValueError(f"{owner}: {error}") from None
    return model


def generator_from_nvlabs(network: NVLabsNetwork, *, impl: str = "auto") -> Generator:
    """Our :class:`Generator` holding a ``G_style`` network's weights (``lod`` as stored)."""
    owner = f"StyleGAN1 generator {network.name}"
    config = generator_config_from_variables(network.shapes(), network.static_kwargs)
    model = Generator(config, impl=impl)
    return _load(owner, model, network.variables, generator_variable_map(config))


def discriminator_from_nvlabs(
    network: NVLabsNetwork, *, label_size: int | None = None, impl: str = "auto"
) -> Discriminator:
    """Our :class:`Discriminator` holding a ``D_basic`` network's weights."""
    owner = f"StyleGAN1 discriminator {network.name}"
    config = discriminator_config_from_variables(
        network.shapes(), network.static_kwargs, label_size=label_size
    )
    model = Discriminator(config, impl=impl)
    return _load(owner, model, network.variables, discriminator_variable_map(config))


def networks_from_nvlabs(
    networks: Mapping[str, NVLabsNetwork], *, impl: str = "auto"
) -> dict[str, torch.nn.Module]:
    """``{"G": Generator, "D": Discriminator, "G_ema": Generator}`` from
    :func:`read_nvlabs_pickle`'s result (``G_ema`` is the pickle's ``Gs``)."""
    G = generator_from_nvlabs(networks["G"], impl=impl)
    G_ema = generator_from_nvlabs(networks["Gs"], impl=impl)
    D = discriminator_from_nvlabs(networks["D"], label_size=G.c_dim, impl=impl)
    return {"G": G.eval(), "D": D.eval(), "G_ema": G_ema.eval()}


def load_nvlabs_pickle(path: str | Path, *, impl: str = "auto") -> dict[str, torch.nn.Module]:
    """Loads an official StyleGAN1 network pickle (``karras2019stylegan-ffhq-1024x1024.pkl``,
    ...) into our models, safely (see :mod:`stylegan_fast.pretrained._unpickle`: nothing from
    the file is executed) and without TensorFlow.

    Args:
        path: the ``.pkl`` file.
        impl: the backend of the models' ops.

    Returns:
        ``{"G": Generator, "D": Discriminator, "G_ema": Generator}`` on the CPU in float32,
        progressive, at the pickle's ``lod`` (0 in the official files); ``G_ema`` is ``Gs``,
        the one to generate with (``G_ema(z, truncation_psi=0.7, truncation_cutoff=8,
        noise_mode="const")`` is the official ``Gs.run(z, None, truncation_psi=0.7,
        randomize_noise=False)``).

    Raises:
        PickleRefused: the file is not a StyleGAN1 network pickle, or names anything outside
            what one needs (``os.system``, ...).
        ValueError: the variables do not form a network our models can hold (the message
            names the unknown, missing or misshapen variables or the unsupported option).
    """
    return networks_from_nvlabs(read_nvlabs_pickle(path), impl=impl)


# --------------------------------------------------------------------------------------------
# Manifest and description.


def _manifest(model: torch.nn.Module, targets: dict[str, VariableTarget]) -> dict:
    shapes = _shapes_of(model)
    return {
        name: () if t.layout == "ignored" else _tf_shape(shapes[t.key], t.layout)
        for name, t in targets.items()
    }


def official_manifest(
    resolution: int = 1024,
    *,
    num_channels: int = 3,
    label_size: int = 0,
    fmap_base: int = 8192,
    fmap_decay: float = 1.0,
    fmap_max: int = 512,
    latent_size: int = 512,
    dlatent_size: int = 512,
    mapping_layers: int = 8,
    mapping_fmaps: int = 512,
    mbstd_group_size: int = 4,
    mbstd_num_features: int = 1,
) -> dict[str, dict[str, tuple[int, ...]]]:
    """The variables (names and TF shapes, no values) of the StyleGAN1 ``G_style`` and
    ``D_basic`` networks with these ``networks_stylegan.py`` arguments (defaults: FFHQ
    1024²), as our variable maps name them.

    Returns:
        ``{"G": {name: shape}, "D": {name: shape}}`` (Gs has G's variables).
    """
    shared = dict(
        resolution=resolution,
        img_channels=num_channels,
        c_dim=label_size,
        fmap_base=fmap_base,
        fmap_decay=fmap_decay,
        fmap_max=fmap_max,
        progressive=True,
    )
    g_config = GeneratorConfig(
        **shared,
        z_dim=latent_size,
        w_dim=dlatent_size,
        mapping_layers=mapping_layers,
        mapping_dim=mapping_fmaps,
    )
    d_config = DiscriminatorConfig(
        **shared, mbstd_group_size=mbstd_group_size, mbstd_num_features=mbstd_num_features
    )
    # Built on the CPU for their shapes: the meta device would be lighter but its first use
    # imports sympy (2.6 s measured, against 0.9 s for the FFHQ-1024 G and D on the CPU).
    G, D = Generator(g_config), Discriminator(d_config)
    return {
        "G": _manifest(G, generator_variable_map(g_config)),
        "D": _manifest(D, discriminator_variable_map(d_config)),
    }


def _count(shapes: Mapping[str, tuple[int, ...]], prefix: str = "") -> tuple[int, int]:
    """(trainable, other) numbers of values among the variables starting with ``prefix``."""
    trainable = other = 0
    for name, shape in shapes.items():
        if name.startswith(prefix):
            if is_trainable(name):
                trainable += math.prod(shape)
            else:
                other += math.prod(shape)
    return trainable, other


def _channels_line(config) -> str:
    per_res = " ".join(
        f"{2**k}²:{config.channels(2**k)}" for k in range(2, config.resolution_log2 + 1)
    )
    return (
        f"{per_res} (fmap_base {config.fmap_base}, fmap_decay {config.fmap_decay:g}, "
        f"fmap_max {config.fmap_max})"
    )


def _fused_line(config) -> str:
    fused = [2**k for k in range(3, config.resolution_log2 + 1) if config.fused_at(2**k)]
    return f"from {fused[0]}² up" if fused else "none"


def describe_nvlabs_pickle(path: str | Path) -> str:
    """What :func:`load_nvlabs_pickle` would build from ``path``: resolution, channels,
    latent sizes, mapping layers, labels, fused layers and parameter counts per network
    (several lines, for ``stylegan-fast import --list``). Reads the file with the
    restricted unpickler and validates the variables' names and shapes as loading does,
    without converting them."""
    networks = read_nvlabs_pickle(path)
    G, D, Gs = networks["G"], networks["D"], networks["Gs"]
    g = generator_config_from_variables(Gs.shapes(), Gs.static_kwargs)
    d = discriminator_config_from_variables(D.shapes(), D.static_kwargs, label_size=g.c_dim)
    built = {}  # G and Gs share a config: one model gives both their expected shapes
    for network in (G, Gs):
        config = generator_config_from_variables(network.shapes(), network.static_kwargs)
        key = config.to_json()
        if key not in built:
            built[key] = _shapes_of(Generator(config))
        owner = f"StyleGAN1 generator {network.name}"
        _check_variables(owner, network.shapes(), generator_variable_map(config), built[key])
    owner = f"StyleGAN1 discriminator {D.name}"
    targets = discriminator_variable_map(d)
    _check_variables(owner, D.shapes(), targets, _shapes_of(Discriminator(d)))
    lod = float(np.asarray(Gs.variables["lod"]))
    labels = f"{g.c_dim} labels" if g.c_dim else "unconditional"
    lines = [
        f"{path}: StyleGAN1 network pickle (G, D, Gs), version {Gs.version}, lod {lod:g}",
        f"  images: {g.resolution}x{g.resolution}, {g.img_channels} channels, {labels}",
        f"  channels: {_channels_line(g)}",
        f"  mapping: z {g.z_dim} -> {g.mapping_layers} dense layers of {g.mapping_dim} -> w "
        f"{g.w_dim} (lrmul {g.mapping_lr_mul:g}), {g.num_ws} style layers",
        f"  synthesis: noise inputs {'yes' if g.use_noise else 'no'}, blur "
        f"{list(g.blur_filter)}, fused up-convolutions {_fused_line(g)}",
        f"  discriminator: minibatch stddev group {d.mbstd_group_size} x "
        f"{d.mbstd_num_features} feature(s), fused down-convolutions {_fused_line(d)}",
    ]
    for network in (G, D, Gs):
        shapes = network.shapes()
        trainable, other = _count(shapes)
        detail = ""
        if network.build_func_name == "G_style":
            mapping, synthesis = _count(shapes, "G_mapping/")[0], _count(shapes, "G_synthesis/")[0]
            detail = f" (mapping {mapping:,}, synthesis {synthesis:,})"
        lines.append(
            f"  {network.name}: {trainable:,} trainable parameters{detail}, {other:,} other values"
        )
    return "\n".join(lines)
