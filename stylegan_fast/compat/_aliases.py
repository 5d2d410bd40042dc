"""Puts compat modules into ``sys.modules`` under the names a client code base imports, so its
own files run unchanged on stylegan_fast's ops."""

from __future__ import annotations

import sys
from types import ModuleType


def install(owner: str, aliases: dict[str, ModuleType], hint: str) -> None:
    """Makes ``import <name>`` (and ``from <parent> import <child>``) give ``module`` for each
    ``name -> module`` of ``aliases``; a parent package of the user's, already imported, also
    gets the attribute, for code that writes ``parent.child.f(...)``. Running it again is a
    no-op.

    Raises:
        RuntimeError: a name is already imported as another module. The code that imported it
            holds that module, so aliasing now would leave the process half on each
            implementation; ``hint`` (appended to the message) says when to call ``owner``.
    """
    taken = {
        name: sys.modules[name]
        for name, module in aliases.items()
        if sys.modules.get(name, module) is not module
    }
    if taken:
        listing = ", ".join(
            f"{name} (from {getattr(module, '__file__', None) or repr(module)})"
            for name, module in taken.items()
        )
        raise RuntimeError(f"{owner}: {listing} imported before install(); {hint}")
    for name, module in aliases.items():
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        # A parent that is itself aliased is ours and has its attributes already (``op``'s
        # ``upfirdn2d`` is the function, as in rosinality's package, not the module).
        if parent in sys.modules and parent not in aliases:
            setattr(sys.modules[parent], child, module)
