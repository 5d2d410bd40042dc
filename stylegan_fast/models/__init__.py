"""StyleGAN1 (Karras et al. 2019) generator and discriminator on the fused layers, their
configurations and named presets."""

from .config import (
    OFFICIAL_TRUNCATION_CUTOFF,
    OFFICIAL_TRUNCATION_PSI,
    PRESETS,
    DiscriminatorConfig,
    GeneratorConfig,
    Preset,
    preset_configs,
)
from .discriminator import Discriminator
from .generator import Generator, GraphedGenerator, mix_ws, style_mix
from .mapping import MappingNetwork, truncate
from .progressive import lod_images
from .synthesis import SynthesisNetwork

__all__ = [
    "OFFICIAL_TRUNCATION_CUTOFF",
    "OFFICIAL_TRUNCATION_PSI",
    "PRESETS",
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "GraphedGenerator",
    "MappingNetwork",
    "Preset",
    "SynthesisNetwork",
    "lod_images",
    "mix_ws",
    "preset_configs",
    "style_mix",
    "truncate",
]
