"""NVlabs' ``torch_utils.ops.conv2d_gradfix``: :func:`conv2d`, :func:`conv_transpose2d`, the
switches :data:`enabled` and :data:`weight_gradients_disabled`, and
:func:`no_weight_gradients`.

- Not :data:`enabled` (the default, as in NVlabs; their training loop sets it to True), the
  two functions are ``F.conv2d`` / ``F.conv_transpose2d`` themselves.
- :data:`enabled`: the same numbers and gradients of every order, from autograd functions
  written from the adjoint relations of a convolution (``stylegan_fast/compat/
  _conv2d_gradfix.py``), whose weight gradients are skipped while
  :data:`weight_gradients_disabled` is True when a backward pass runs: inside
  ``with no_weight_gradients():`` a backward gives the weights no gradient (None) and every
  other gradient unchanged. Their loss wraps the R1 and path-length ``autograd.grad`` calls in
  it; the penalty's own backward runs outside it and reaches the weights as usual. Whatever
  reaches the output only through a conv's weight argument (the styles of a fused modulated
  convolution) gets no gradient inside it either, as in theirs: their stylegan2 config sets
  ``pl_no_weight_grad`` together with ``fused_modconv_default='inference_only'`` (training
  modulates activations, not weights).

One difference: NVlabs use their custom op only for CUDA tensors on the PyTorch versions it was
written for (elsewhere their switches change nothing); here :data:`enabled` acts on every
device and PyTorch version.
"""

from __future__ import annotations

import sys

from .. import _conv2d_gradfix

__all__ = ["conv2d", "conv_transpose2d", "enabled", "no_weight_gradients"]

enabled = False  # use the switchable autograd functions (NVlabs' training loop sets True)
weight_gradients_disabled = False  # skip weight gradients in backward passes run now

conv2d, conv_transpose2d = _conv2d_gradfix.module_functions(__name__)


def no_weight_gradients(disable: bool = True):
    """Context manager: backward passes run inside it give conv weights no gradient (when
    ``disable``; ``disable=False`` changes nothing, for their ``pl_no_weight_grad`` option)."""
    return _conv2d_gradfix.switched(sys.modules[__name__], "weight_gradients_disabled", disable)
