"""NVlabs' ``impl`` argument in terms of ours."""

from __future__ import annotations

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


def init() -> bool:
    """NVlabs' ``_init()`` (their scripts call ``bias_act._init()``, ``upfirdn2d._init()`` to
    build the CUDA plugin ahead of time and test whether it loaded): nothing is built here, and
    ``impl="cuda"`` always has a backend, so True."""
    return True
