"""What a trained generator draws, from Python: images of seeds (``generate_images``), the
style-mixing figure (``style_mixing``, ``stylemix_figure``), interpolations
(``interpolation``), stochastic variation (``noise_variation``), the figures the
``train`` command writes at the end of a run (``write_figures``), and the projection of
an image into the latent space (:func:`stylegan_fast.tools.project.project`). The
command-line glue of ``generate``, ``mix``, ``interpolate``, ``noise`` and ``project`` is in
:mod:`stylegan_fast.commands`.

Imports: tools may import ``stylegan_fast.train.images`` (the pixel convention of the
training data, [-1, 1] <-> uint8, which every figure inverts) and nothing else of ``train``;
``train`` never imports tools, so the two do not depend on each other both ways.
``tests/test_cli.py`` holds this."""

from ._common import noise_for_seed, seed_to_z, seeds_to_z
from .figures import write_figures
from .generate import generate_images, map_latents, seed_ws, synthesize
from .interpolate import interpolation, slerp
from .mix import mix_styles, style_bands, style_mixing, stylemix_figure
from .noise import noise_variation

__all__ = [
    "generate_images",
    "interpolation",
    "map_latents",
    "mix_styles",
    "noise_for_seed",
    "noise_variation",
    "seed_to_z",
    "seed_ws",
    "seeds_to_z",
    "slerp",
    "style_bands",
    "style_mixing",
    "stylemix_figure",
    "synthesize",
    "write_figures",
]
