"""rosinality's stylegan2-pytorch ops: :func:`fused_leaky_relu`, :class:`FusedLeakyReLU`,
:func:`upfirdn2d` and the ``conv2d_gradfix`` module, with their signatures. :mod:`.op` mirrors
the ``op`` package they are imported from there; :func:`install` makes their files import it.
"""

from __future__ import annotations

import importlib

from .. import _aliases
from . import op
from .op import FusedLeakyReLU, conv2d_gradfix, fused_leaky_relu, upfirdn2d

__all__ = [
    "ALIASED",
    "FusedLeakyReLU",
    "conv2d_gradfix",
    "fused_leaky_relu",
    "install",
    "upfirdn2d",
]

# The whole ``op`` package is replaced (its __init__ compiles their CUDA extension at import);
# ``op.upfirdn2d`` the attribute is the function, as there, so the module comes by name.
ALIASED = {
    "op": op,
    **{
        f"op.{name}": importlib.import_module(f"{op.__name__}.{name}")
        for name in ("fused_act", "upfirdn2d", "conv2d_gradfix")
    },
}


def install() -> None:
    """Makes rosinality's ``from op import FusedLeakyReLU, fused_leaky_relu, upfirdn2d,
    conv2d_gradfix`` (and ``op.fused_act``, ``op.upfirdn2d``, ``op.conv2d_gradfix``) import
    stylegan_fast's, so their ``op/__init__.py``, which compiles a CUDA extension at import
    (and fails without ``CUDA_HOME``), is never imported and nothing is compiled. Call it once,
    before importing their ``model.py``, ``train.py`` or ``non_leaking.py``; every ``import op``
    in the process then gets this package. Running it again is a no-op.

    Raises:
        RuntimeError: a module named ``op`` (or ``op.<name>``) was imported already.
    """
    hint = (
        "call stylegan_fast.compat.rosinality.install() before importing rosinality's "
        "model.py / train.py (first thing in the script)"
    )
    _aliases.install("stylegan_fast.compat.rosinality.install()", ALIASED, hint)
