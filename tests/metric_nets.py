"""Tiny metric networks the command-line tests save as TorchScript files, standing in for
Inception (``--feature-net``) and LPIPS (``--distance-net``). Test fixtures, not product code;
importable from every test folder (``tests/`` is on the path through its conftest)."""

import warnings

import torch


class TinyFeatures(torch.nn.Module):
    """A fixed random conv + global average pool: [N, 3, H, W] -> [N, 4]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.tanh(self.conv(x)).mean(dim=(2, 3))


class MeanSquare(torch.nn.Module):
    """A perceptual distance stand-in: d(a, b) = mean squared difference, [N]."""

    def forward(self, a, b):
        return ((a - b) ** 2).mean(dim=(1, 2, 3))


def script(module, path):
    """Saves ``module`` as a TorchScript file at ``path``; returns ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    return path
