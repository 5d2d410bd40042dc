"""Model configurations: dataclasses with JSON round trips, and the named presets.

A config holds everything needed to rebuild a model (checkpoints store ``to_dict()``);
``Generator.from_config(cfg)`` / ``Discriminator.from_config(cfg)`` rebuild it.

Channel schedule (StyleGAN1, PGGAN): ``nf(stage) = min(int(fmap_base / 2 ** (stage *
fmap_decay)), fmap_max)``; the layers at resolution ``2 ** k`` have ``nf(k - 1)`` channels
(with the defaults 8192 / 512 / 1: 512 up to 32², then 256, 128, 64, 32, 16 at 1024²).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Any, ClassVar

FUSED_SCALE_CHOICES = ("auto", True, False)
# The resolution from which fused_scale="auto" resamples with one strided convolution
# (StyleGAN1's choice: the fused form wins once the feature maps are large).
FUSED_SCALE_MIN_RESOLUTION = 128
# StyleGAN1's inference defaults for the truncation trick (the forward's defaults are 1, None).
OFFICIAL_TRUNCATION_PSI = 0.7
OFFICIAL_TRUNCATION_CUTOFF = 8


def _check_int(owner: str, name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value}")


def _check_real(owner: str, name: str, value, low: float, high: float, low_open=False) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{owner}: {name} must be in {bracket}{low}, {high}], got {value}")


def _check_bool(owner: str, name: str, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a bool, got {value!r}")


class _Serializable:
    """``to_dict``/``to_json``/``from_dict``/``from_json`` for the config dataclasses."""

    # Fields holding tuples (JSON gives lists back).
    _TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-ready values."""
        out = dataclasses.asdict(self)
        for name in self._TUPLE_FIELDS:
            out[name] = list(out[name])
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Rebuilds the config; unknown keys raise (a checkpoint from another version must
        not load silently wrong), missing keys take their defaults."""
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict: expected a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{cls.__name__}.from_dict: unknown fields {unknown}; known: {sorted(known)}"
            )
        values = dict(data)
        for name in cls._TUPLE_FIELDS:
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def replace(self, **overrides):
        """A copy with ``overrides`` applied (validated); unknown names raise TypeError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown fields {unknown}; known: {sorted(known)}"
            )
        return dataclasses.replace(self, **overrides)


@dataclasses.dataclass
class _ArchitectureConfig(_Serializable):
    """Fields shared by the generator and the discriminator."""

    resolution: int = 1024
    img_channels: int = 3
    c_dim: int = 0
    fmap_base: int = 8192
    fmap_decay: float = 1.0
    fmap_max: int = 512
    blur_filter: tuple[float, ...] = (1, 2, 1)
    fused_scale: str | bool = "auto"
    progressive: bool = False

    _TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ("blur_filter",)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raises ValueError/TypeError naming the first bad field."""
        name = type(self).__name__
        _check_int(name, "resolution", self.resolution, 4)
        if self.resolution & (self.resolution - 1):
            raise ValueError(
                f"{name}: resolution must be a power of two >= 4, got {self.resolution}"
            )
        _check_int(name, "img_channels", self.img_channels, 1)
        _check_int(name, "c_dim", self.c_dim, 0)
        _check_int(name, "fmap_base", self.fmap_base, 1)
        _check_int(name, "fmap_max", self.fmap_max, 1)
        _check_real(name, "fmap_decay", self.fmap_decay, 0.0, math.inf)
        if self.fused_scale not in FUSED_SCALE_CHOICES or not isinstance(
            self.fused_scale, (str, bool)
        ):
            raise ValueError(
                f"{name}: fused_scale must be 'auto', True or False, got {self.fused_scale!r}"
            )
        _check_bool(name, "progressive", self.progressive)
        taps = self.blur_filter
        if (
            not isinstance(taps, (tuple, list))
            or len(taps) == 0
            or not all(isinstance(t, numbers.Real) and not isinstance(t, bool) for t in taps)
            or sum(taps) == 0
        ):
            raise ValueError(
                f"{name}: blur_filter must be a non-empty sequence of numbers with a nonzero "
                f"sum, got {taps!r}"
            )
        self.blur_filter = tuple(taps)
        smallest = self.nf(self.resolution_log2 - 1)
        if smallest < 1:
            raise ValueError(
                f"{name}: fmap_base={self.fmap_base}, fmap_decay={self.fmap_decay} leave "
                f"{smallest} channels at {self.resolution}²; raise fmap_base"
            )

    @property
    def resolution_log2(self) -> int:
        return int(self.resolution).bit_length() - 1

    @property
    def max_lod(self) -> int:
        """The lowest level of detail: ``log2(resolution) - 2`` (lod k shows 4 * 2 ** (max_lod
        - k) pixels)."""
        return self.resolution_log2 - 2

    def nf(self, stage: int) -> int:
        """Feature maps at ``stage``: ``min(int(fmap_base / 2 ** (stage * fmap_decay)),
        fmap_max)``."""
        return min(int(self.fmap_base / (2.0 ** (stage * self.fmap_decay))), self.fmap_max)

    def channels(self, resolution: int) -> int:
        """Channels of the layers at ``resolution`` (a power of two): ``nf(log2(res) - 1)``."""
        return self.nf(int(resolution).bit_length() - 2)

    def fused_at(self, resolution: int) -> bool:
        """Whether the block at ``resolution`` resamples with one strided convolution."""
        if self.fused_scale == "auto":
            return resolution >= FUSED_SCALE_MIN_RESOLUTION
        return bool(self.fused_scale)


@dataclasses.dataclass
class GeneratorConfig(_ArchitectureConfig):
    """StyleGAN1 generator: mapping network + synthesis network.

    Fields (beyond resolution, img_channels, c_dim, fmap_*, blur_filter, fused_scale,
    progressive):
        z_dim, w_dim: latent widths.
        mapping_layers: dense layers of the mapping network (8).
        mapping_dim: their hidden width (512).
        mapping_lr_mul: learning-rate multiplier of the mapping network (0.01).
        w_avg_beta: decay of the tracked average of w (0.995).
        use_noise: per-layer noise inputs.
        norm_eps: added to the variance in each layer's instance norm (StyleGAN1: 1e-8;
            networks converted from ``torch.nn.InstanceNorm2d`` ports: its 1e-5).
    """

    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_dim: int = 512
    mapping_lr_mul: float = 0.01
    w_avg_beta: float = 0.995
    use_noise: bool = True
    norm_eps: float = 1e-8

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        _check_int(name, "z_dim", self.z_dim, 1)
        _check_int(name, "w_dim", self.w_dim, 1)
        _check_int(name, "mapping_layers", self.mapping_layers, 1)
        _check_int(name, "mapping_dim", self.mapping_dim, 1)
        _check_real(name, "mapping_lr_mul", self.mapping_lr_mul, 0.0, math.inf, low_open=True)
        _check_real(name, "w_avg_beta", self.w_avg_beta, 0.0, 1.0)
        _check_bool(name, "use_noise", self.use_noise)
        _check_real(name, "norm_eps", self.norm_eps, 0.0, 1.0)

    @property
    def num_ws(self) -> int:
        """Layers that take a w: two per resolution from 4², ``2 * log2(resolution) - 2``."""
        return 2 * self.resolution_log2 - 2


@dataclasses.dataclass
class DiscriminatorConfig(_ArchitectureConfig):
    """PGGAN/StyleGAN1 discriminator.

    Fields (beyond the shared ones):
        mbstd_group_size: minibatch-stddev group size (``min(group, N)`` at run time; 1
            turns the layer off).
        mbstd_num_features: minibatch-stddev channels appended at 4x4.
    """

    mbstd_group_size: int = 4
    mbstd_num_features: int = 1

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        _check_int(name, "mbstd_group_size", self.mbstd_group_size, 1)
        _check_int(name, "mbstd_num_features", self.mbstd_num_features, 1)
        if self.mbstd_group_size > 1 and self.nf(1) % self.mbstd_num_features:
            raise ValueError(
                f"{name}: the 4x4 channels ({self.nf(1)}) must be divisible by "
                f"mbstd_num_features ({self.mbstd_num_features})"
            )


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named pair of configurations."""

    name: str
    description: str
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig


def _paper_preset(resolution: int) -> Preset:
    return Preset(
        name=f"stylegan-{resolution}",
        description=f"StyleGAN1 at {resolution}x{resolution} (the paper's architecture)",
        generator=GeneratorConfig(resolution=resolution),
        discriminator=DiscriminatorConfig(resolution=resolution),
    )


# Channels 64 at 4²-16², 32 at 32²; 64-d z and w, 4 mapping layers: every op and layer of
# the real model, small enough for a CPU to train on a few hundred 32x32 faces in minutes.
_TINY = dict(resolution=32, fmap_base=512, fmap_max=64)

PRESETS: dict[str, Preset] = {
    **{p.name: p for p in (_paper_preset(2**k) for k in range(5, 11))},
    "tiny": Preset(
        name="tiny",
        description="32x32, 64-d latents, 32-64 channels: CPU tests and demos",
        generator=GeneratorConfig(**_TINY, z_dim=64, w_dim=64, mapping_layers=4, mapping_dim=64),
        discriminator=DiscriminatorConfig(**_TINY),
    ),
}


def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name]


def preset_configs(name: str, **overrides) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """Fresh copies of preset ``name``'s configurations with ``overrides`` applied to each
    config that has the field (``resolution``, ``c_dim``, ``progressive``, ... go to both;
    ``z_dim`` only to the generator). A name neither has raises TypeError."""
    preset = _preset(name)
    g_fields = {f.name for f in dataclasses.fields(GeneratorConfig)}
    d_fields = {f.name for f in dataclasses.fields(DiscriminatorConfig)}
    unknown = sorted(set(overrides) - g_fields - d_fields)
    if unknown:
        raise TypeError(
            f"preset_configs: unknown fields {unknown}; generator fields: {sorted(g_fields)}; "
            f"discriminator fields: {sorted(d_fields)}"
        )
    g = preset.generator.replace(**{k: v for k, v in overrides.items() if k in g_fields})
    d = preset.discriminator.replace(**{k: v for k, v in overrides.items() if k in d_fields})
    return g, d


def generator_config(name: str, **overrides) -> GeneratorConfig:
    """Preset ``name``'s generator configuration with ``overrides`` (generator fields only)."""
    return _preset(name).generator.replace(**overrides)


def discriminator_config(name: str, **overrides) -> DiscriminatorConfig:
    """Preset ``name``'s discriminator configuration with ``overrides``."""
    return _preset(name).discriminator.replace(**overrides)
