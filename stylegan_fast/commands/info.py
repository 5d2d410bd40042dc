"""``stylegan-fast info``: versions, the compiled extension's state, which backend
``impl="auto"`` picks for each op on CPU and CUDA tensors (with every backend's reason when it
cannot serve), the CUDA preference table and the environment variables.

It reads the backends only through ``stylegan_fast._backend``'s public functions
(``registered_ops``, ``auto_order``, ``available_backends``, ``describe``),
``stylegan_fast._preferences`` (``TABLE``, ``LAYOUTS``, ``SIZE_CLASSES``,
``PREFERENCES_FILE``) and ``stylegan_fast._library.EXTENSION`` (``loaded``, ``build_info``,
``reason``), never through the ops' registration, which may change underneath."""

from __future__ import annotations

import argparse
import os
import platform
import sys

import torch

from .. import _backend, _preferences

HELP = "versions, extension state, backend per op and why"

ENVIRONMENT_VARIABLES = {
    "STYLEGAN_FAST_IMPL": "default impl for every op: auto, ref, cpp, cuda or triton",
    "STYLEGAN_FAST_IMPL_<OP>": "impl for one op, e.g. STYLEGAN_FAST_IMPL_BIAS_ACT=ref",
    "STYLEGAN_FAST_DISABLE_EXTENSION": "1: do not load stylegan_fast._C (reference/Triton only)",
    "STYLEGAN_FAST_POISON_OUTPUTS": "1: kernels fill outputs with NaN before writing (debugging)",
    "STYLEGAN_FAST_JIT": "1: compile _C from the shipped sources at import if it is missing",
    "TORCH_EXTENSIONS_DIR": "where STYLEGAN_FAST_JIT=1 builds (default ~/.cache/torch_extensions)",
    "TRITON_INTERPRET": "1: run Triton kernels on CPU tensors (set before importing triton)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``info`` has no options."""


def run(_args: argparse.Namespace) -> int:
    """Versions, the extension's state, and which backend serves each op on CPU and CUDA."""
    import stylegan_fast
    from stylegan_fast import _library

    print(f"stylegan_fast {stylegan_fast.__version__}")
    print(f"python        {platform.python_version()} ({sys.executable})")
    print(f"torch         {torch.__version__} (CUDA {torch.version.cuda or 'none'})")
    try:
        import triton

        print(f"triton        {triton.__version__}")
    except ImportError:
        print("triton        not installed")
    cuda = torch.cuda.is_available()
    print(f"CUDA device   {torch.cuda.get_device_name(0) if cuda else 'none available'}")
    print(f"CPU threads   {torch.get_num_threads()}")
    ext = _library.EXTENSION
    if ext.loaded:
        info = ext.build_info
        cuda_note = "with CUDA kernels" if info.get("with_cuda") else "CPU kernels only"
        print(
            f"extension     stylegan_fast._C loaded ({cuda_note}; built against torch "
            f"{info.get('torch_version', '?')})"
        )
        if info.get("jit_build_dir"):
            print(f"              built at import (STYLEGAN_FAST_JIT=1) in {info['jit_build_dir']}")
    else:
        print(f"extension     stylegan_fast._C not loaded: {ext.reason}")
    print()
    for device_type in ("cpu", "cuda"):
        device = torch.device(device_type)
        print(
            f"ops on {device_type} tensors (impl='auto' picks the first available of "
            "its preference order):"
        )
        for op in _backend.registered_ops():
            order = _backend.auto_order(op, device_type)
            if device_type == "cpu":
                print(
                    f"  {op}: auto -> {_first_available(op, device, order)}   (order: "
                    f"{', '.join(order)})"
                )
            else:
                print(f"  {op}:")
                _print_preferences(op, device)
            print(_backend.describe(op, device, indent="      "))
        print()
    print(f"CUDA preference table: {_preferences.PREFERENCES_FILE}")
    print()
    print("environment variables:")
    for name, meaning in ENVIRONMENT_VARIABLES.items():
        value = os.environ.get(name)
        print(f"  {name:32s} {meaning}" + (f"  [set: {value}]" if value is not None else ""))
    return 0


def _first_available(op: str, device: torch.device, order) -> str:
    available = _backend.available_backends(op, device)
    return next(b for b in order if b in available)


def _print_preferences(op: str, device: torch.device) -> None:
    """The preference table's rows for ``op``: layout, size class, order, the backend auto
    picks here, and where each order came from (predicted, or measured on which GPU) as
    numbered notes under the rows."""
    sources: list[str] = []
    for layout in _preferences.LAYOUTS:
        for size in _preferences.SIZE_CLASSES:
            order = _backend.auto_order(op, "cuda", layout, size)
            entry = _preferences.TABLE.get((op, layout, size))
            source = entry.source if entry is not None else "not in the table: default order"
            if source not in sources:
                sources.append(source)
            print(
                f"    {layout:13s} {size:6s} order {', '.join(order):20s} auto -> "
                f"{_first_available(op, device, order):6s} [{sources.index(source) + 1}]"
            )
    for i, source in enumerate(sources, 1):
        print(f"    [{i}] {source}")
