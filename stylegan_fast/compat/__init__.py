"""Drop-in replacements for the custom ops of existing StyleGAN code bases, with their
signatures, defaults and numbers, running on stylegan_fast's kernels.

- :mod:`stylegan_fast.compat.nvlabs`: ``torch_utils.ops.bias_act``, ``upfirdn2d`` and
  ``conv2d_gradfix`` of NVlabs' stylegan2-ada-pytorch and stylegan3.
- :mod:`stylegan_fast.compat.rosinality`: the ``op`` package of rosinality's
  stylegan2-pytorch (``fused_leaky_relu``, ``FusedLeakyReLU``, ``upfirdn2d``,
  ``conv2d_gradfix``).

Each package's ``install()`` makes the code base's own, unchanged files import these. Each shim
only maps arguments onto :mod:`stylegan_fast.ops` (``conv2d_gradfix`` onto torch's
convolutions); the module docstrings say how each argument maps and where the original's
behaviour is not reproduced.
"""

from . import nvlabs, rosinality

__all__ = ["nvlabs", "rosinality"]
