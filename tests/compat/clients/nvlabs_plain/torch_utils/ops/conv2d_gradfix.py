"""Plain-PyTorch conv2d_gradfix (the reference): torch's convolutions, inert switches."""

import contextlib

from torch.nn.functional import conv2d, conv_transpose2d  # noqa: F401

enabled = False
weight_gradients_disabled = False


def no_weight_gradients(disable=True):
    return contextlib.nullcontext()
