"""rosinality's ``style-based-gan-pytorch`` checkpoints (StyleGAN1 in PyTorch, 2019) as our
:class:`~stylegan_fast.models.Generator` and :class:`~stylegan_fast.models.Discriminator`.

Written from the file layout and the math of that project's ``model.py`` (no code of it is
used). Files are read with ``torch.load(weights_only=True)`` only: tensors and plain
containers, nothing a pickle could name is ever called.

Layout. ``train.py`` saves ``{"generator", "discriminator", "g_running", "g_optimizer",
"d_optimizer"}`` (``g_running`` is the generator's moving average: our ``G_ema``); the
published networks (``stylegan-256px-new.model``, ...) are a bare ``g_running`` state dict.
The generator's names (``C``: a block's channels, ``i``: the block, 4² is block 0):

- ``style.{1,3,...,2*n_mlp-1}.linear.weight_orig [D, D]`` and ``.bias``: the mapping network
  (entry 0 is the pixel norm, the even entries the leaky ReLUs);
- ``generator.progression.0.conv1.input [1, C, 4, 4]``: the constant;
- up-sampling first convolution of block ``i >= 1``: ``conv1.1.conv.weight_orig [C, C_in, 3,
  3]`` and ``.bias`` (nearest x2, conv, blur ``conv1.2``), or when fused
  ``conv1.0.weight [C_in, C, 3, 3]`` and ``conv1.0.bias`` (a transposed convolution; blur
  ``conv1.1``);
- ``conv2.conv.weight_orig [C, C, 3, 3]``, ``conv2.conv.bias``; ``noise{1,2}.weight_orig
  [1, C, 1, 1]``; ``adain{1,2}.style.linear.weight_orig [2C, D]`` and ``.bias``;
- ``generator.to_rgb.{i}.conv.weight_orig [3, C, 1, 1]`` and ``.bias``: one per block (their
  progressive growing); the blocks and to_rgb above the trained resolution are stored too.

The discriminator: ``from_rgb.{j}`` (``.conv.*``, or ``.0.conv.*`` when followed by a leaky
ReLU), ``progression.{j}.conv1.0.conv.*`` (3x3), ``progression.{j}.conv2`` (blur ``.0``,
then ``.1.weight``/``.1.bias`` fused, or ``.1.conv.*`` followed by 2x2 average pooling),
the last block ``progression.{n-1}`` a 3x3 conv on ``C + 1`` channels and a 4x4 conv without
padding, then ``linear.linear.*`` to one score; block ``j`` works at ``4 * 2 ** (n - 1 - j)``.

Math that equals ours, converted exactly:

- equalized learning rate: runtime weight = ``weight_orig * sqrt(2 / fan_in)`` everywhere
  (also the style affines, to_rgb and the last linear, where StyleGAN1 uses gain 1); we store
  ``runtime / (gain / sqrt(fan_in) * lr_mul)``;
- the mapping network's learning rate (0.01) is applied in their optimizer, so their stored
  mapping weights and biases are runtime values; ours are divided by ``mapping_lr_mul``;
- the style affine's bias starts at 1 for the scale half (``gamma = A(w)[:C]``); ours adds 1
  (``scale = 1 + A(w)[:C]``): we store ``bias[:C] - 1``;
- noise strength ``weight_orig [1, C, 1, 1]`` is equalized too (fan-in ``C``): runtime
  ``weight_orig * sqrt(2 / C)``;
- fused up-sampling (blocks at 128² and above by default): their transposed convolution
  uses ``(pad-and-sum of W * sqrt(2 / fan_in)) / 4`` with ``W: [in, out, 3, 3]`` unflipped,
  which equals nearest x2 followed by a 3x3 convolution with ``(W * sqrt(2 / fan_in) /
  4)`` transposed to ``[out, in]`` and flipped in both axes: that is our weight;
- fused down-sampling: ``pad-and-sum / 4`` of the runtime weight: the same as ours;
- their instance norm is ``torch.nn.InstanceNorm2d`` (``eps = 1e-5``, StyleGAN1's is
  ``1e-8``): the converted generator's config has ``norm_eps = 1e-5``;
- blur ``[1, 2, 1]`` (normalised); layer order conv -> noise -> leaky ReLU 0.2 -> instance
  norm -> style; the 4x4 conv of the last D block as our dense layer on the flattened
  ``[C, 4, 4]`` features;
- minibatch standard deviation: theirs takes the **whole batch** as one group (one
  feature); the converted ``D`` gets ``mbstd_group_size = WHOLE_BATCH`` (our layer uses
  ``min(group, N)``, so the group is the batch), not StyleGAN1's 4.

What differs (the loader warns or refuses where a file relies on it):

- their up-sampling convolution adds its bias **before** the blur (which pads with zeros), so
  the bias is attenuated on the outermost pixel ring (3/4 on edges, 9/16 in corners); ours
  (and StyleGAN1's) adds it after. Exact only where those biases are zero; a warning gives
  the largest one otherwise;
- their discriminator widens the channels in a block's first convolution
  (``C_R -> C_{R/2}``, then ``C_{R/2} -> C_{R/2}``), StyleGAN1 in the second: blocks whose
  width changes (64² and above in their architecture) cannot be converted; a fromRGB without
  leaky ReLU (trained with ``--no_from_rgb_activate``) neither. Then ``D`` is None, with a
  warning;
- both layers of a block share one noise image in their generator; ours draws one per layer
  (pass ``noise=`` with equal images per block to reproduce theirs);
- the truncation average is not stored (their ``generate.py`` averages the mapping over
  10 x 1024 random z at run time); the converted ``w_avg`` is the mean w of ``w_avg_samples``
  z drawn from seed 0. Their truncation applies to every layer (our ``truncation_cutoff =
  None``), their style mixing picks a crossover block, not a layer;
- the trained resolution is not stored (every file holds all nine blocks up to 1024²):
  pass ``resolution``, or name the file like theirs (``...-256px-...`` or
  ``train_step-6``). Blocks above it and the lower-resolution to_rgb/from_rgb (used only
  while fading in) are dropped; the networks are fixed-resolution.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from ..models import Discriminator, Generator
from ..models.config import DiscriminatorConfig, GeneratorConfig
from .nvlabs import _channel_schedule

CHECKPOINT_KEYS = ("generator", "discriminator", "g_running", "g_optimizer", "d_optimizer")
# Minibatch-stddev group of their discriminator: the whole batch (ours takes min(group, N)).
WHOLE_BATCH = 2**31 - 1
# Their generate.py estimates the truncation average from 10 batches of 1024 latents.
W_AVG_SAMPLES = 10 * 1024
_BLUR = torch.tensor([1.0, 2.0, 1.0])
_G_MARKER = "generator.progression.0.conv1.input"
_D_MARKER = "linear.linear.weight_orig"


class RosinalityError(ValueError):
    """A file or state dict that is not (or not a convertible) rosinality checkpoint."""


def read_torch_file(path: str | os.PathLike) -> object:
    """``torch.load(path, map_location="cpu", weights_only=True)``; any failure is one
    :class:`RosinalityError` naming the file."""
    try:
        return torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError/RuntimeError/EOFError variants
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RosinalityError(
            f"{path}: not a PyTorch file that loads with weights_only=True "
            f"({type(exc).__name__}: {first[:160]})"
        ) from None


def _strip_module(state: Mapping) -> dict:
    # nn.DataParallel prefixes every name with "module."; their train.py saves .module's.
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _is_generator(state) -> bool:
    return isinstance(state, Mapping) and _G_MARKER in _strip_module(state)


def _is_discriminator(state) -> bool:
    return isinstance(state, Mapping) and _D_MARKER in _strip_module(state)


def split_checkpoint(obj) -> dict[str, dict | None]:
    """``{"G", "D", "G_ema"}`` state dicts (or None) of a loaded rosinality file: a
    ``train.py`` checkpoint, or a bare generator (taken as ``g_running``, the published
    networks' form) or discriminator state dict.

    Raises:
        RosinalityError: naming what was found instead.
    """
    if isinstance(obj, Mapping) and any(k in obj for k in ("generator", "g_running")):
        parts = {"G": obj.get("generator"), "D": obj.get("discriminator"), "G_ema": None}
        parts["G_ema"] = obj.get("g_running")
        for name, key in (("G", "generator"), ("D", "discriminator"), ("G_ema", "g_running")):
            check = _is_discriminator if name == "D" else _is_generator
            if parts[name] is not None and not check(parts[name]):
                raise RosinalityError(f"its {key!r} entry is not a rosinality state dict")
        return {k: None if v is None else _strip_module(v) for k, v in parts.items()}
    if _is_generator(obj):
        return {"G": None, "D": None, "G_ema": _strip_module(obj)}
    if _is_discriminator(obj):
        return {"G": None, "D": _strip_module(obj), "G_ema": None}
    if isinstance(obj, Mapping):
        keys = sorted(str(k) for k in obj)[:6]
        raise RosinalityError(
            f"a dict with keys {keys}{' ...' if len(obj) > 6 else ''}, not a rosinality "
            f"style-based-gan-pytorch checkpoint (expected {list(CHECKPOINT_KEYS)} or a "
            f"state dict with {_G_MARKER!r})"
        )
    raise RosinalityError(f"a {type(obj).__name__}, not a rosinality checkpoint (a dict)")


def resolution_from_name(path: str | os.PathLike) -> int | None:
    """The trained resolution their file names carry: ``256px`` -> 256, ``train_step-6``
    -> 256 (step ``s`` trains ``4 * 2 ** s``); None when the name has neither."""
    name = Path(path).name
    match = re.search(r"(\d+)px", name)
    if match:
        return int(match.group(1))
    match = re.search(r"train_step-(\d+)", name)
    return 4 * 2 ** int(match.group(1)) if match else None


def _runtime(stored: torch.Tensor) -> torch.Tensor:
    """Their equalized-lr weight at run time: ``weight_orig * sqrt(2 / fan_in)`` with
    ``fan_in = size(1) * weight[0][0].numel()`` (float64)."""
    fan_in = stored.shape[1] * stored[0][0].numel()
    return stored.double() * math.sqrt(2 / fan_in)


class _Names:
    """Takes tensors out of a state dict by name, so that what is left can be named."""

    def __init__(self, state: Mapping, what: str):
        self.state, self.what, self.taken = dict(state), what, set()

    def __contains__(self, name: str) -> bool:
        return name in self.state

    def take(self, name: str) -> torch.Tensor:
        if name not in self.state:
            raise RosinalityError(f"{self.what}: missing tensor {name!r}")
        self.taken.add(name)
        return self.state[name]

    def indices(self, pattern: str) -> list[int]:
        found = {int(m.group(1)) for k in self.state if (m := re.fullmatch(pattern, k))}
        return sorted(found)

    def check_blur(self, name: str) -> None:
        """Their blur buffers ``[C, 1, 3, 3]`` must hold the normalised ``[1, 2, 1]`` blur."""
        for suffix in ("weight", "weight_flip"):
            key = f"{name}.{suffix}"
            if key in self.state:
                kernel = self.take(key).double()
                expected = torch.outer(_BLUR, _BLUR).double() / 16
                if kernel.shape[-2:] != (3, 3) or not torch.allclose(
                    kernel, expected.expand_as(kernel)
                ):
                    raise RosinalityError(f"{self.what}: {key!r} is not the [1, 2, 1] blur")


def _assign(target: torch.Tensor, value: torch.Tensor, ours: str, theirs: str) -> None:
    if tuple(target.shape) != tuple(value.shape):
        raise RosinalityError(
            f"{theirs!r} gives {list(value.shape)} for our {ours!r}, which is {list(target.shape)}"
        )
    with torch.no_grad():
        target.copy_(value.to(target.dtype))


def _set_layer(layer, weight_runtime, bias_runtime, ours: str, theirs: str) -> None:
    """Our equalized layer from runtime values: stored = runtime / (gain / sqrt(fan_in) *
    lr_mul), bias stored = runtime / lr_mul."""
    _assign(layer.weight, weight_runtime / layer.weight_gain, f"{ours}.weight", theirs)
    if bias_runtime is not None:
        _assign(layer.bias, bias_runtime.double() / layer.lr_mul, f"{ours}.bias", theirs)


def _channel_config(channels: dict[int, int]) -> dict:
    """``fmap_base``/``fmap_decay``/``fmap_max`` whose ``channels(R)`` is ``channels[R]`` for
    every resolution ``R`` given (the NVlabs loader's search; stage ``s`` is ``2 ** (s + 1)``)."""
    stages = {r.bit_length() - 2: c for r, c in channels.items()}
    try:
        base, decay, fmap_max = _channel_schedule("rosinality", stages, {})
    except ValueError as exc:
        raise RosinalityError(str(exc)) from None
    return dict(fmap_base=base, fmap_decay=decay, fmap_max=fmap_max)


def _fused_scale(fused: dict[int, bool]):
    """Our ``fused_scale`` for the fused flag of each up/down block."""
    for choice in ("auto", False, True):
        probe = GeneratorConfig(resolution=4, fused_scale=choice)
        if all(probe.fused_at(r) == f for r, f in fused.items()):
            return choice
    raise RosinalityError(f"fused resampling at {fused} matches no fused_scale setting")


def _generator_layout(names: _Names, resolution: int) -> dict:
    """What the generator state dict says: blocks, channels, widths, fused blocks."""
    blocks = names.indices(r"generator\.progression\.(\d+)\.conv2\.conv\.weight_orig")
    step = resolution.bit_length() - 3
    if resolution < 4 or resolution & (resolution - 1) or step >= len(blocks):
        raise RosinalityError(
            f"resolution {resolution}: the file's generator has blocks up to "
            f"{4 * 2 ** (len(blocks) - 1)}² (resolution must be a power of two it has)"
        )
    channels, fused = {}, {}
    for i in range(step + 1):
        res = 4 * 2**i
        channels[res] = names.state[f"generator.progression.{i}.conv2.conv.weight_orig"].shape[0]
        if i:
            fused[res] = f"generator.progression.{i}.conv1.0.weight" in names
    mapping = names.indices(r"style\.(\d+)\.linear\.weight_orig")
    if not mapping or mapping != list(range(1, 2 * len(mapping), 2)):
        raise RosinalityError(f"mapping layers style.{mapping}: expected style.1, 3, 5, ...")
    width = names.state["style.1.linear.weight_orig"].shape[1]
    to_rgb = names.state[f"generator.to_rgb.{step}.conv.weight_orig"]
    return dict(
        step=step,
        channels=channels,
        fused=fused,
        mapping=mapping,
        width=width,
        img_channels=to_rgb.shape[0],
    )


def convert_generator(
    state: Mapping, resolution: int, *, impl: str = "auto", w_avg_samples: int = W_AVG_SAMPLES
) -> Generator:
    """Our fixed-resolution :class:`Generator` from a rosinality generator state dict.

    Args:
        state: ``generator`` or ``g_running`` (``StyledGenerator.state_dict()``).
        resolution: the trained resolution (a block of the file).
        w_avg_samples: latents (seed 0) whose mean w becomes ``w_avg``.

    Warns when an up-sampling convolution has a nonzero bias (see the module docstring).
    """
    names = _Names(state, "generator")
    layout = _generator_layout(names, resolution)
    width = layout["width"]
    config = GeneratorConfig(
        resolution=resolution,
        img_channels=layout["img_channels"],
        z_dim=width,
        w_dim=width,
        mapping_layers=len(layout["mapping"]),
        mapping_dim=width,
        fused_scale=_fused_scale(layout["fused"]),
        norm_eps=1e-5,  # torch.nn.InstanceNorm2d's default, which their AdaIN uses
        **_channel_config(layout["channels"]),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # our noise_const buffers: the same for every conversion
        G = Generator(config, impl=impl)
    for j, index in enumerate(layout["mapping"]):
        theirs = f"style.{index}.linear"
        weight = _runtime(names.take(f"{theirs}.weight_orig"))
        _set_layer(
            G.mapping.layers[j], weight, names.take(f"{theirs}.bias"), f"mapping.{j}", theirs
        )
    up_bias = 0.0
    for i, block in enumerate(G.synthesis.blocks):
        prefix = f"generator.progression.{i}"
        if i == 0:
            _assign(
                block.const, names.take(f"{prefix}.conv1.input"), "const", f"{prefix}.conv1.input"
            )
            first_bias = None
        elif layout["fused"][block.resolution]:
            kernel = names.take(f"{prefix}.conv1.0.weight")  # [in, out, 3, 3], transposed conv
            runtime = _runtime_transposed(kernel) / 4
            _set_layer(
                block.layer0.conv, runtime.transpose(0, 1).flip([2, 3]), None, "conv", prefix
            )
            first_bias = names.take(f"{prefix}.conv1.0.bias")
            names.check_blur(f"{prefix}.conv1.1")
        else:
            theirs = f"{prefix}.conv1.1.conv"
            _set_layer(
                block.layer0.conv,
                _runtime(names.take(f"{theirs}.weight_orig")),
                None,
                "conv",
                theirs,
            )
            first_bias = names.take(f"{theirs}.bias")
            names.check_blur(f"{prefix}.conv1.2")
        if first_bias is not None:
            up_bias = max(up_bias, float(first_bias.abs().max()))
        second_bias = names.take(f"{prefix}.conv2.conv.bias")
        _set_layer(
            block.layer1.conv, _runtime(names.take(f"{prefix}.conv2.conv.weight_orig")), None,
            "conv", prefix,
        )  # fmt: skip
        for k, (layer, bias) in enumerate(
            ((block.layer0, first_bias), (block.layer1, second_bias))
        ):
            _set_epilogue(layer.epilogue, names, f"{prefix}", k + 1, bias)
    top = layout["step"]
    theirs = f"generator.to_rgb.{top}.conv"
    weight = _runtime(names.take(f"{theirs}.weight_orig"))
    _set_layer(G.synthesis.blocks[top].torgb, weight, names.take(f"{theirs}.bias"), "torgb", theirs)
    _check_leftovers(names, _G_DROPPED, layout)
    if up_bias > 0:
        warnings.warn(
            f"rosinality generator: up-sampling convolutions have biases up to {up_bias:.3g}; "
            "they add them before the zero-padded blur, we after it, so the outermost pixel "
            "ring of those layers differs (see stylegan_fast.pretrained.rosinality)",
            stacklevel=2,
        )
    _estimate_w_avg(G, w_avg_samples)
    return G.eval()


def _runtime_transposed(kernel: torch.Tensor) -> torch.Tensor:
    # Their FusedUpsample's weight is [in, out, k, k] with fan_in = in * k * k.
    return kernel.double() * math.sqrt(2 / (kernel.shape[0] * kernel[0][0].numel()))


def _set_epilogue(epilogue, names: _Names, prefix: str, k: int, conv_bias) -> None:
    """Noise strength, bias and style affine of layer ``k`` (1 or 2) of their block."""
    noise = _runtime(names.take(f"{prefix}.noise{k}.weight_orig")).flatten()
    _assign(epilogue.noise_strength, noise, "noise_strength", f"{prefix}.noise{k}")
    bias = torch.zeros(epilogue.channels) if conv_bias is None else conv_bias
    _assign(epilogue.bias, bias, "bias", f"{prefix} conv bias")
    affine = f"{prefix}.adain{k}.style.linear"
    style_bias = names.take(f"{affine}.bias").double().clone()
    style_bias[: epilogue.channels] -= 1  # their gamma is the bias itself, our scale is 1 + it
    weight = _runtime(names.take(f"{affine}.weight_orig"))
    _set_layer(epilogue.style.affine, weight, style_bias, "style.affine", affine)


# Names deliberately not converted: blocks above the resolution, the other to_rgb/from_rgb.
_G_DROPPED = (r"generator\.progression\.(\d+)\..*", r"generator\.to_rgb\.(\d+)\..*")
_D_DROPPED = (r"progression\.(\d+)\..*", r"from_rgb\.(\d+)\..*")


def _check_leftovers(names: _Names, dropped, layout) -> None:
    left = [k for k in names.state if k not in names.taken]
    unknown = [k for k in left if not any(re.fullmatch(p, k) for p in dropped)]
    if unknown:
        raise RosinalityError(
            f"{names.what}: {len(unknown)} tensor(s) of no known role: {unknown[:5]}"
        )


@torch.no_grad()
def _estimate_w_avg(G: Generator, samples: int) -> None:
    generator = torch.Generator().manual_seed(0)
    total = torch.zeros(G.w_dim, dtype=torch.float64)
    for start in range(0, samples, 1024):
        z = torch.randn(min(1024, samples - start), G.z_dim, generator=generator)
        total += G.mapping(z)[:, 0].double().sum(0)
    G.mapping.w_avg.copy_((total / max(samples, 1)).float())


def convert_discriminator(
    state: Mapping, resolution: int, *, impl: str = "auto", img_channels: int | None = None
) -> Discriminator | None:
    """Our fixed-resolution :class:`Discriminator` from theirs, or None (with a warning)
    where theirs cannot be expressed in ours (see the module docstring)."""
    names = _Names(state, "discriminator")
    count = len(names.indices(r"progression\.(\d+)\.conv1\.0\.conv\.weight_orig"))
    step = resolution.bit_length() - 3
    if step >= count:
        raise RosinalityError(
            f"resolution {resolution}: the file's discriminator has blocks up to "
            f"{4 * 2 ** (count - 1)}²"
        )
    rgb = count - 1 - step
    activated = f"from_rgb.{rgb}.0.conv.weight_orig" in names
    if not activated:
        return _skip_d("its fromRGB has no leaky ReLU (trained with --no_from_rgb_activate)")
    channels, fused = {}, {}
    for level in range(step, 0, -1):
        j, res = count - 1 - level, 4 * 2**level
        first = names.state[f"progression.{j}.conv1.0.conv.weight_orig"]
        if first.shape[0] != first.shape[1]:
            return _skip_d(
                f"its {res}² block widens {first.shape[1]} -> {first.shape[0]} channels in the "
                "first convolution; StyleGAN1's in the second"
            )
        channels[res] = first.shape[1]
        fused[res] = f"progression.{j}.conv2.1.weight" in names
    final = names.state[f"progression.{count - 1}.conv1.0.conv.weight_orig"]
    channels[4] = final.shape[0]
    dense = names.state[f"progression.{count - 1}.conv2.0.conv.weight_orig"].shape[0]
    channel_config = _channel_config(channels)
    if dense != channel_config["fmap_max"]:
        return _skip_d(f"its 4x4 dense layer has {dense} outputs, ours nf(0) = fmap_max")
    config = DiscriminatorConfig(
        resolution=resolution,
        img_channels=names.state[f"from_rgb.{rgb}.0.conv.weight_orig"].shape[1],
        fused_scale=_fused_scale(fused) if fused else "auto",
        mbstd_group_size=WHOLE_BATCH,
        **channel_config,
    )
    if img_channels is not None and config.img_channels != img_channels:
        raise RosinalityError(
            f"discriminator reads {config.img_channels} channels, generator makes {img_channels}"
        )
    D = Discriminator(config, impl=impl)
    theirs = f"from_rgb.{rgb}.0.conv"
    weight = _runtime(names.take(f"{theirs}.weight_orig"))
    _set_layer(D.fromrgb[step], weight, names.take(f"{theirs}.bias"), "fromrgb", theirs)
    for level in range(step, 0, -1):
        j, block = count - 1 - level, D.blocks[level]
        theirs = f"progression.{j}.conv1.0.conv"
        weight = _runtime(names.take(f"{theirs}.weight_orig"))
        _set_layer(block.conv0, weight, names.take(f"{theirs}.bias"), "conv0", theirs)
        names.check_blur(f"progression.{j}.conv2.0")
        theirs = f"progression.{j}.conv2.1" + ("" if fused[block.resolution] else ".conv")
        suffix = "weight" if fused[block.resolution] else "weight_orig"
        weight = _runtime(names.take(f"{theirs}.{suffix}"))
        _set_layer(block.conv1, weight, names.take(f"{theirs}.bias"), "conv1", theirs)
    last = f"progression.{count - 1}"
    epilogue = D.blocks[0]
    weight = _runtime(names.take(f"{last}.conv1.0.conv.weight_orig"))
    _set_layer(epilogue.conv, weight, names.take(f"{last}.conv1.0.conv.bias"), "conv", last)
    weight = _runtime(names.take(f"{last}.conv2.0.conv.weight_orig")).flatten(1)
    _set_layer(epilogue.fc, weight, names.take(f"{last}.conv2.0.conv.bias"), "fc", last)
    weight = _runtime(names.take("linear.linear.weight_orig"))
    _set_layer(epilogue.out, weight, names.take("linear.linear.bias"), "out", "linear.linear")
    _check_leftovers(names, _D_DROPPED, None)
    return D.eval()


def _skip_d(reason: str) -> None:
    warnings.warn(
        f"rosinality discriminator not converted: {reason} (D is None; see "
        "stylegan_fast.pretrained.rosinality)",
        stacklevel=3,
    )
    return None


def _resolve_resolution(source, resolution: int | None) -> int:
    if resolution is None and isinstance(source, (str, os.PathLike)):
        resolution = resolution_from_name(source)
    if resolution is None:
        raise RosinalityError(
            "rosinality files do not store the trained resolution (they hold every block up "
            "to 1024²): pass resolution (--resolution), or keep their file name "
            "(...-256px-... or train_step-6)"
        )
    return int(resolution)


def load_rosinality(
    source, *, resolution: int | None = None, impl: str = "auto", w_avg_samples: int = W_AVG_SAMPLES
) -> dict:
    """``{"G", "D", "G_ema"}`` from a rosinality file (path, read with ``weights_only=True``)
    or an already loaded object; entries the file does not hold (or, for ``D``, cannot be
    converted: a warning says why) are None.

    Args:
        source: a path or the loaded checkpoint / state dict.
        resolution: the trained resolution; None: read from the file name.
        impl: the models' kernel backend.
        w_avg_samples: latents whose mean w becomes ``w_avg`` (seed 0).
    """
    what = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "state"
    loaded = read_torch_file(source) if isinstance(source, (str, os.PathLike)) else source
    try:
        parts = split_checkpoint(loaded)
        resolution = _resolve_resolution(source, resolution)
        out: dict = {"G": None, "D": None, "G_ema": None}
        for key in ("G", "G_ema"):
            if parts[key] is not None:
                out[key] = convert_generator(
                    parts[key], resolution, impl=impl, w_avg_samples=w_avg_samples
                )
        if parts["D"] is not None:
            made = out["G_ema"] or out["G"]
            out["D"] = convert_discriminator(
                parts["D"], resolution, impl=impl, img_channels=made.img_channels if made else None
            )
    except RosinalityError as exc:
        raise RosinalityError(f"{what}: {exc}") from None
    return out


def describe_rosinality(source, *, resolution: int | None = None) -> str:
    """What a rosinality file holds: its entries, blocks, channels and fused blocks."""
    loaded = read_torch_file(source) if isinstance(source, (str, os.PathLike)) else source
    parts = split_checkpoint(loaded)
    lines = ["rosinality style-based-gan-pytorch checkpoint"]
    for key, label in (("G", "generator"), ("D", "discriminator"), ("G_ema", "g_running")):
        state = parts[key]
        if state is None:
            lines.append(f"  {label}: absent")
            continue
        count = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))
        lines.append(f"  {label}: {len(state)} tensors, {count:,} values")
    g = parts["G_ema"] or parts["G"]
    if g is not None:
        names = _Names(g, "generator")
        blocks = names.indices(r"generator\.progression\.(\d+)\.conv2\.conv\.weight_orig")
        layout = _generator_layout(names, 4 * 2 ** (len(blocks) - 1))
        lines.append(
            f"  blocks 4²..{4 * 2 ** (len(blocks) - 1)}², channels "
            f"{list(layout['channels'].values())}, mapping {len(layout['mapping'])} x "
            f"{layout['width']}, fused up-sampling at "
            f"{[r for r, f in layout['fused'].items() if f]}"
        )
    try:
        lines.append(f"  trained resolution: {_resolve_resolution(source, resolution)}²")
    except RosinalityError:
        lines.append("  trained resolution: not in the file name (pass --resolution)")
    return "\n".join(lines)
