"""A small digit classifier and its export as the FID/KID feature network.

The network reads what every feature network in this library reads, ``[N, 3, H, W]`` in
[-1, 1] (greyscale replicated to RGB by ``FeatureNet``), averages the channels, and runs three
conv + ReLU + max-pool stages and a hidden dense layer; the hidden layer's ``FEATURE_DIM``
activations are the features (the role Inception's pool features play for FID), the last
dense layer the 10 class logits.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ...train.checkpoint import write_atomic

FEATURE_DIM = 64
NUM_CLASSES = 10


class DigitClassifier(torch.nn.Module):
    """``x: [N, C, 32, 32]`` in [-1, 1] (C = 1 or 3) -> logits ``[N, 10]``;
    :meth:`features` gives the penultimate ``[N, FEATURE_DIM]``."""

    def __init__(self, width: int = 32, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.convs = torch.nn.ModuleList(
            [
                torch.nn.Conv2d(1, width, 3, padding=1),
                torch.nn.Conv2d(width, 2 * width, 3, padding=1),
                torch.nn.Conv2d(2 * width, 2 * width, 3, padding=1),
            ]
        )
        self.hidden = torch.nn.Linear(2 * width * 16, feature_dim)
        self.out = torch.nn.Linear(feature_dim, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [N, C, 32, 32]`` -> ``[N, feature_dim]`` (after the hidden layer's ReLU)."""
        x = x.mean(dim=1, keepdim=True)
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        return F.relu(self.hidden(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


class _FeatureHead(torch.nn.Module):
    """What is exported: ``forward(x) = classifier.features(x)``."""

    def __init__(self, classifier: DigitClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 12,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    max_shift: int = 2,
) -> DigitClassifier:
    """Trains a :class:`DigitClassifier` on ``images: [N, 1, 32, 32]`` in [-1, 1] and
    ``labels: [N]`` (Adam, cross-entropy, random shifts of up to ``max_shift`` pixels so the
    features do not depend on exact placement). Deterministic for a given ``seed``."""
    if images.ndim != 4 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"images must be [N, C, H, W] with one label each, got {list(images.shape)} and "
            f"{list(labels.shape)}"
        )
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch = images[index]
            if max_shift:
                dx, dy = torch.randint(-max_shift, max_shift + 1, [2], generator=generator).tolist()
                batch = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(batch), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` whose arg-max class is ``labels``."""
    predicted = torch.cat(
        [model(images[i : i + 256]).argmax(1) for i in range(0, len(images), 256)]
    )
    return float((predicted == labels).float().mean())


def export_feature_net(model: DigitClassifier, path: str | os.PathLike) -> Path:
    """Writes ``model``'s penultimate-layer features as a TorchScript file (atomically), for
    ``load_feature_net(path, preprocessing="identity")``: input ``[N, 3, H, W]`` in [-1, 1],
    output ``[N, FEATURE_DIM]``."""
    head = _FeatureHead(model).eval()

    def write(temporary: Path) -> None:
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript; it is still the format load_feature_net reads.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.jit.save(torch.jit.script(head), str(temporary))

    return write_atomic(path, write)
