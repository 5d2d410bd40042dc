"""FreezeD (Mo et al. 2020, "Freeze the Discriminator"): fine-tuning with the
discriminator's layers nearest the image held fixed.

``freeze_d = N`` freezes every fromRGB layer and the ``N`` highest-resolution
:class:`~stylegan_fast.models.discriminator.DiscriminatorBlock` s (at resolution ``R``:
``blocks[top]`` at ``R``, ``blocks[top - 1]`` at ``R / 2``, ...; ``top`` the block the
current level of detail starts at). ``N`` runs from 0 (nothing frozen) to the number of
such blocks, ``log2(R) - 2``; the 4x4 epilogue (minibatch stddev, conv, dense layers and
the score) always trains. Frozen parameters get no gradient (``requires_grad`` stays False)
and are left out of the optimizer, so they stay bit-identical.
"""

from __future__ import annotations

import torch


def frozen_d_parameters(D: torch.nn.Module, count: int) -> dict[str, torch.nn.Parameter]:
    """The parameters ``freeze_d = count`` freezes in ``D``, by name (empty for 0).

    Raises:
        ValueError: ``count`` out of ``[0, number of blocks above 4x4]``, or a ``D`` without
            the ``fromrgb``/``blocks`` layout of :class:`stylegan_fast.models.Discriminator`.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"freeze_d must be an int >= 0, got {count!r}")
    if count == 0:
        return {}
    blocks, fromrgb = getattr(D, "blocks", None), getattr(D, "fromrgb", None)
    if blocks is None or fromrgb is None:
        raise ValueError(
            f"freeze_d needs a stylegan_fast Discriminator (fromrgb and blocks), got "
            f"{type(D).__name__}"
        )
    top = len(blocks) - 1 - getattr(D, "lod_floor", 0)
    if count > top:
        raise ValueError(
            f"freeze_d must be in [0, {top}] (the discriminator's blocks above 4x4), got {count}"
        )
    prefixes = ["fromrgb."] + [f"blocks.{top - k}." for k in range(count)]
    return {
        name: p for name, p in D.named_parameters() if any(name.startswith(q) for q in prefixes)
    }
