"""Generation tools behind the ``generate``, ``mix``, ``interpolate``, ``noise`` and ``metrics``
commands; each module's functions work from Python too (``generate_images``,
``style_mixing``, ``interpolation``, ``noise_variation``)."""

from ._common import noise_for_seed, parse_range, seed_to_z, seeds_to_z
from .generate import generate_images, seed_ws, synthesize
from .interpolate import interpolation, slerp
from .mix import mix_styles, style_bands, style_mixing
from .noise import noise_variation

__all__ = [
    "generate_images",
    "interpolation",
    "mix_styles",
    "noise_for_seed",
    "noise_variation",
    "parse_range",
    "seed_to_z",
    "seed_ws",
    "seeds_to_z",
    "slerp",
    "style_bands",
    "style_mixing",
    "synthesize",
]

from . import generate, interpolate, metrics, mix, noise  # noqa: E402

# The commands cli.build_parser registers: name -> (module with add_arguments/run, help).
COMMANDS = {
    "generate": (generate, "one PNG per seed (and a grid) from a checkpoint or export"),
    "mix": (mix, "the style-mixing figure: coarse/middle/fine styles copied across seeds"),
    "interpolate": (interpolate, "frames between seeds (lerp in W, slerp in Z): strip and GIF"),
    "metrics": (metrics, "FID/KID/PPL of a checkpoint or export (appends to metrics.jsonl)"),
    "noise": (noise, "stochastic variation: one latent, many noise draws, the std map"),
}
