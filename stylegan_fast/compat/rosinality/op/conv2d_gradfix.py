"""rosinality's ``op.conv2d_gradfix``: :func:`conv2d`, :func:`conv_transpose2d`, the switches
:data:`enabled` and :data:`weight_gradients_disabled`, and :func:`no_weight_gradients`.

As :mod:`stylegan_fast.compat.nvlabs.conv2d_gradfix` (same math and semantics), with
rosinality's defaults: :data:`enabled` is True, and :func:`no_weight_gradients` takes no
argument. Their ``train.py`` wraps the R1 ``autograd.grad`` in ``no_weight_gradients()``.
Theirs acts on CUDA tensors only; this one on every device.
"""

from __future__ import annotations

import sys

from ... import _conv2d_gradfix

__all__ = ["conv2d", "conv_transpose2d", "enabled", "no_weight_gradients"]

enabled = True  # use the switchable autograd functions
weight_gradients_disabled = False  # skip weight gradients in backward passes run now

conv2d, conv_transpose2d = _conv2d_gradfix.module_functions(__name__)


def no_weight_gradients():
    """Context manager: backward passes run inside it give conv weights no gradient."""
    return _conv2d_gradfix.switched(sys.modules[__name__], "weight_gradients_disabled")
