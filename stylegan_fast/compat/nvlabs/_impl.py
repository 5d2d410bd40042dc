"""NVlabs' ``impl`` argument in terms of ours, and :func:`shim`, which builds each NVlabs
function from the stylegan_fast op that implements it."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ... import _backend

# NVlabs' impl="cuda" means "the CUDA plugin for CUDA tensors when it builds, else the
# reference": what our "auto" does with every backend (C++ on CPU, CUDA/Triton on GPU), so it
# maps to "auto" (which also honours STYLEGAN_FAST_IMPL). "ref" means the eager reference in
# both. Our own backend names are accepted as well, to pick one explicitly.
_NVLABS_IMPLS = {"cuda": "auto", "ref": "ref"}
_ACCEPTED = ("cuda", "ref", *(impl for impl in _backend.IMPLS if impl not in ("cuda", "ref")))


def resolve(op: str, impl) -> str:
    """Our impl for NVlabs' ``impl`` (``"cuda"`` -> ``"auto"``, ``"ref"`` -> ``"ref"``)."""
    if not isinstance(impl, str) or impl not in _ACCEPTED:
        raise ValueError(
            f"{op}: impl must be 'cuda' (the fastest available backend) or 'ref' (the eager "
            f"reference), or one of stylegan_fast's {_ACCEPTED[2:]}; got {impl!r}"
        )
    return _NVLABS_IMPLS.get(impl, impl)


def shim(
    op: Callable,
    module: str,
    doc: str,
    adapt: Callable[[dict], None] | None = None,
    **defaults,
) -> Callable:
    """NVlabs' function for our ``op``: named like ``op``, defined in ``module``, documented by
    ``doc``, with ``op``'s parameters in ``op``'s order but NVlabs' ``defaults`` in place of
    ours (``inspect.Parameter.empty``: required, as in NVlabs' signature). A call binds its
    arguments as NVlabs' ``def`` would (the same errors for a missing or unknown argument),
    calls ``adapt(arguments)`` (a dict by name, changed in place) when given, maps ``impl`` (if
    ``op`` has one) by :func:`resolve`, then calls ``op`` with every argument by name.

    The shim is a real ``def`` compiled from its signature (as ``dataclasses`` writes
    ``__init__``): Python binds the arguments itself, so the shim costs one extra call, where
    ``inspect.Signature.bind`` costs ~6 us a call (measured; 10-40% of a small op's own
    overhead), and ``torch.compile(fullgraph=True)`` traces it as plain Python.
    """
    name = op.__name__
    parameters = []
    for p in inspect.signature(op).parameters.values():
        if p.kind is not p.POSITIONAL_OR_KEYWORD:
            raise TypeError(f"shim({name}): {p} is not positional-or-keyword")
        parameters.append(p.replace(default=defaults.pop(p.name, p.default)))
    if defaults:
        raise TypeError(f"shim({name}): {name} has no parameter {', '.join(defaults)}")
    names = [parameter.name for parameter in parameters]

    def call(arguments: dict):
        if adapt is not None:
            adapt(arguments)
        if "impl" in arguments:
            arguments["impl"] = resolve(name, arguments["impl"])
        return op(**arguments)

    # Defaults are looked up in the namespace, so any object (torch.device) serves as one.
    header = ", ".join(
        p.name if p.default is p.empty else f"{p.name}=_defaults[{p.name!r}]" for p in parameters
    )
    body = ", ".join(f"{n!r}: {n}" for n in names)
    namespace = {"_call": call, "_defaults": {p.name: p.default for p in parameters}}
    exec(f"def {name}({header}):\n    return _call({{{body}}})\n", namespace)  # noqa: S102
    function = namespace[name]
    function.__module__ = module
    function.__doc__ = doc
    function.__annotations__ = dict(op.__annotations__)
    return function


def init() -> bool:
    """NVlabs' ``_init()`` (their scripts call ``bias_act._init()``, ``upfirdn2d._init()`` to
    build the CUDA plugin ahead of time and test whether it loaded): nothing is built here, and
    ``impl="cuda"`` always has a backend, so True."""
    return True
