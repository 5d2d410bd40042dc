"""NVlabs' ``torch_utils.ops`` op modules (stylegan2-ada-pytorch, stylegan3): ``bias_act``,
``upfirdn2d`` and ``conv2d_gradfix``, modules as there, so ``bias_act.bias_act(...)``,
``bias_act.activation_funcs[...]``, ``upfirdn2d.setup_filter(...)``,
``conv2d_gradfix.enabled = True`` keep working.

:func:`install` makes their own files import these (call it before importing their code).
"""

from __future__ import annotations

import importlib

from .. import _aliases
from . import bias_act, conv2d_gradfix, upfirdn2d

__all__ = ["ALIASED", "bias_act", "conv2d_gradfix", "install", "upfirdn2d"]

# The torch_utils.ops modules install() replaces. The rest of their torch_utils (persistence,
# misc, custom_ops, training_stats) and of torch_utils.ops (conv2d_resample, fma,
# filtered_lrelu, grid_sample_gradfix) stays theirs; the ops among those that import
# bias_act / upfirdn2d / conv2d_gradfix (``from . import upfirdn2d``) then get these.
ALIASED = {
    "torch_utils.ops.bias_act": bias_act,
    "torch_utils.ops.upfirdn2d": upfirdn2d,
    "torch_utils.ops.conv2d_gradfix": conv2d_gradfix,
}


def install() -> None:
    """Makes NVlabs' code import stylegan_fast's ``bias_act``, ``upfirdn2d`` and
    ``conv2d_gradfix`` wherever it imports ``torch_utils.ops.<name>`` (``from torch_utils.ops
    import bias_act``, ``from . import upfirdn2d``, ``torch_utils.ops.conv2d_gradfix.f(...)``,
    network pickles, whose stored source imports them the same way), so no CUDA plugin of
    theirs is built for these. Call it once, before importing their networks, training, metrics
    or viewer code; their ``torch_utils`` package must be importable (run from their
    repository's root, or put it on ``sys.path``). Running it again is a no-op.

    Raises:
        ImportError: ``torch_utils`` (with its ``ops`` package) cannot be imported.
        RuntimeError: one of their op modules was imported already: the code that imported it
            keeps their op, so install() refuses rather than leave the process half-replaced.
    """
    owner = "stylegan_fast.compat.nvlabs.install()"
    for package in ("torch_utils", "torch_utils.ops"):
        try:
            importlib.import_module(package)
        except ImportError as error:
            raise ImportError(
                f"{owner}: cannot import NVlabs' {package} ({error}); run from the root of "
                "your stylegan2-ada-pytorch or stylegan3 checkout, or add it to sys.path, "
                "before calling install()"
            ) from error
    hint = (
        "call stylegan_fast.compat.nvlabs.install() before importing NVlabs' networks, "
        "training, metrics or viewer code (first thing in the script)"
    )
    _aliases.install(owner, ALIASED, hint)
