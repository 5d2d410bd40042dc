"""torch.library plumbing shared by every op: the namespace, schema definition, the compiled
extension ``stylegan_fast._C`` (and why it is missing, if it is), the output-layout rule the
fake functions share with the kernels, and the generic higher-order backward.

Schemas live in Python (each op's ``registration.py``, through ``ops/_registry.define_op``) so
they exist whether or not ``_C`` is built; ``_C`` only adds kernels to them with
``TORCH_LIBRARY_IMPL``.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .ops._common import env_flag

NAMESPACE = "stylegan_fast"


def define(name: str, schema: str):
    """Defines ``stylegan_fast::<name>`` with ``schema`` ("(Tensor x, ...) -> Tensor") and
    returns its overload ``torch.ops.stylegan_fast.<name>.default``."""
    torch.library.define(f"{NAMESPACE}::{name}", schema)
    return getattr(getattr(torch.ops, NAMESPACE), name).default


def has_kernel(op_name: str, dispatch_key: str) -> bool:
    """Whether ``stylegan_fast::<op_name>`` has a kernel for ``dispatch_key`` ("CPU", "CUDA")."""
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"{NAMESPACE}::{op_name}", dispatch_key)


def register_autograd(op, backward, setup_context) -> None:
    """``torch.library.register_autograd``, unless ``_C`` already registered the op's autograd
    in C++ (csrc/autograd.cpp: the first-order autograd of the ``_C`` ops, ~10x cheaper per
    call than a Python one). The Python rule stays the spec: both compute the same gradients,
    and the tests compare every backend's gradients with the reference's."""
    if has_kernel(op.name().split("::")[1], "Autograd"):
        return
    torch.library.register_autograd(op, backward, setup_context=setup_context)


# ---------------------------------------------------------------------------------------------
# The compiled extension


@dataclasses.dataclass(frozen=True)
class ExtensionStatus:
    loaded: bool
    reason: str  # why it is not loaded ("" when it is)
    build_info: dict


def _load_extension() -> ExtensionStatus:
    if env_flag("STYLEGAN_FAST_DISABLE_EXTENSION"):
        return ExtensionStatus(False, "disabled by STYLEGAN_FAST_DISABLE_EXTENSION=1", {})
    status = _load_prebuilt_extension()
    if status.loaded or not env_flag("STYLEGAN_FAST_JIT"):
        return status
    return _jit_build_extension(status.reason)


def _load_prebuilt_extension() -> ExtensionStatus:
    package_dir = Path(__file__).parent
    if importlib.util.find_spec(f"{__package__}._C") is None:
        return ExtensionStatus(
            False,
            "it was not built (reinstall with `pip install --no-build-isolation .`, or set "
            "STYLEGAN_FAST_JIT=1 to build it at import)",
            {},
        )
    info_path = package_dir / "_build_info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    built_for = info.get("torch_version")
    if built_for is not None and built_for != torch.__version__:
        return ExtensionStatus(
            False,
            f"it was built against torch {built_for} but torch {torch.__version__} is running; "
            "rebuild it with `pip install --no-build-isolation --force-reinstall .` (or set "
            "STYLEGAN_FAST_JIT=1 to build it at import)",
            info,
        )
    try:
        importlib.import_module(f"{__package__}._C")
    except Exception as exc:  # an ABI mismatch surfaces as ImportError or OSError
        return ExtensionStatus(False, f"it failed to load: {exc}", info)
    return ExtensionStatus(True, "", info)


def jit_build_directory(name: str) -> Path:
    """Where the JIT build of extension ``name`` lives: ``$TORCH_EXTENSIONS_DIR/<name>``, else
    torch's default ``~/.cache/torch_extensions/py<XY>_<cuXYZ|cpu>/<name>``."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if not root:
        from torch.utils.cpp_extension import get_default_build_root

        accelerator = f"cu{torch.version.cuda.replace('.', '')}" if torch.version.cuda else "cpu"
        root = os.path.join(
            get_default_build_root(),
            f"py{sys.version_info.major}{sys.version_info.minor}_{accelerator}",
        )
    return Path(root) / name


def _jit_build_extension(prebuilt_reason: str) -> ExtensionStatus:
    """STYLEGAN_FAST_JIT=1: compiles the shipped sources with ``torch.utils.cpp_extension.load``
    (the same flags as setup.py, see ``_build_flags``) against the running torch, and loads the
    library, whose static registrations add the kernels to the op schemas. Built once per torch
    version and source change; later imports load the cached library."""
    from . import _build_flags

    sources_dir = _build_flags.source_dir(Path(__file__).parent)
    if sources_dir is None:
        return ExtensionStatus(
            False,
            f"{prebuilt_reason}; the JIT build (STYLEGAN_FAST_JIT=1) found no C++ sources (neither "
            "stylegan_fast/_csrc nor csrc/ beside the package)",
            {},
        )
    try:
        from torch.utils import cpp_extension

        with_cuda = (
            torch.version.cuda is not None
            and cpp_extension.CUDA_HOME is not None
            and not env_flag("STYLEGAN_FAST_NO_CUDA")
        )
        sources = _build_flags.sources(sources_dir, with_cuda)
        with_cuda = with_cuda and any(p.suffix == ".cu" for p in sources)
        tag = re.sub(r"[^0-9A-Za-z]+", "_", torch.__version__)
        name = f"stylegan_fast_jit_{tag}_{'cuda' if with_cuda else 'cpu'}"
        build_dir = jit_build_directory(name)
        build_dir.mkdir(parents=True, exist_ok=True)
        cflags = list(_build_flags.CXX_FLAGS)
        cuda_flags = list(_build_flags.NVCC_FLAGS)
        if with_cuda:
            define = f"-D{_build_flags.DEFINE_WITH_CUDA}=1"
            cflags.append(define)
            cuda_flags.append(define)
            if not os.environ.get("TORCH_CUDA_ARCH_LIST") and torch.cuda.device_count() == 0:
                os.environ["TORCH_CUDA_ARCH_LIST"] = _build_flags.default_cuda_arch_list(
                    torch.cuda.get_arch_list()
                )
        if not (build_dir / f"{name}.so").exists():
            print(
                f"stylegan_fast: STYLEGAN_FAST_JIT=1: compiling the extension from {sources_dir} "
                f"into {build_dir} (once per torch version; a few minutes)",
                file=sys.stderr,
            )
        cpp_extension.load(
            name=name,
            sources=[str(p) for p in sources],
            extra_cflags=cflags,
            extra_cuda_cflags=cuda_flags if with_cuda else None,
            extra_include_paths=[str(sources_dir)],
            build_directory=str(build_dir),
            with_cuda=with_cuda,
            is_python_module=False,
            verbose=env_flag("STYLEGAN_FAST_JIT_VERBOSE"),
        )
    except Exception as exc:
        return ExtensionStatus(
            False,
            f"{prebuilt_reason}; the JIT build (STYLEGAN_FAST_JIT=1) failed: "
            f"{_summarize_build_error(exc)} (STYLEGAN_FAST_JIT_VERBOSE=1 shows the compiler "
            "output)",
            {},
        )
    info = {
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "with_cuda": with_cuda,
        "cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None,
        "sources": [p.name for p in sources],
        "jit_build_dir": str(build_dir),
    }
    return ExtensionStatus(True, "", info)


def _summarize_build_error(exc: Exception, max_lines: int = 4) -> str:
    """The first line of a build error and its compiler error lines, on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    errors = [line for line in lines[1:] if "error" in line.lower()][:max_lines]
    return " | ".join([lines[0], *errors])


EXTENSION = _load_extension()


# ---------------------------------------------------------------------------------------------
# Layout rule shared by kernels (csrc/common.h: kernel_memory_format) and fake functions


def kernel_memory_format(x: torch.Tensor) -> torch.memory_format:
    """The memory format a kernel computes in and returns for input ``x``: channels_last
    stays channels_last; contiguous, sliced and transposed inputs give contiguous outputs."""
    if (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    ):
        return torch.channels_last
    return torch.contiguous_format


def empty_like_kernel(x: torch.Tensor, memory_format: torch.memory_format | None = None):
    """An empty tensor shaped like ``x`` in the layout a kernel returns for ``x``."""
    fmt = kernel_memory_format(x) if memory_format is None else memory_format
    return torch.empty(x.shape, dtype=x.dtype, device=x.device).contiguous(memory_format=fmt)


def poison_outputs() -> bool:
    """Whether kernels NaN-fill their outputs before writing them (STYLEGAN_FAST_POISON_OUTPUTS=1,
    which the test suite sets): an element a kernel forgets to write then fails parity."""
    return os.environ.get("STYLEGAN_FAST_POISON_OUTPUTS", "") == "1"


def new_output(
    shape: Sequence[int],
    like: torch.Tensor,
    memory_format: torch.memory_format = torch.contiguous_format,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """An output buffer for a Python-launched kernel (Triton), the mirror of
    ``csrc/common.h: new_output``: on ``like``'s device, in ``dtype`` (default ``like``'s), in
    ``memory_format``, NaN-filled when outputs are poisoned (floating dtypes only)."""
    out = torch.empty(
        tuple(shape),
        dtype=like.dtype if dtype is None else dtype,
        device=like.device,
        memory_format=memory_format,
    )
    if out.is_floating_point() and poison_outputs():
        out.fill_(float("nan"))
    return out


# ---------------------------------------------------------------------------------------------
# Higher-order backward through the reference


def reference_backward_of_backward(
    reference: Callable[..., torch.Tensor | Sequence[torch.Tensor]],
    primals: Sequence[torch.Tensor | None],
    grad_outputs: Sequence[torch.Tensor | None],
    grads_of_grads: Sequence[torch.Tensor | None],
) -> tuple[torch.Tensor | None, ...]:
    """Backward of an op's first backward, computed by differentiating the reference twice.

    Let ``out = reference(*primals)`` and ``g = vjp(out, primals, grad_outputs)``. Given the
    gradients ``grads_of_grads`` flowing into ``g`` (one per primal, ``None`` for none), this
    returns the gradients with respect to ``(*grad_outputs, *primals)``. Fast kernels serve the
    forward and first backward; this serves every order above that, in plain torch, so it is
    itself differentiable (the graph is kept when grad mode is on, i.e. for third order).
    ``None`` primals (absent optional inputs) are passed through as ``None``.
    """
    keep_graph = torch.is_grad_enabled()
    result: list[torch.Tensor | None] = [None] * (len(grad_outputs) + len(primals))
    with torch.enable_grad():

        def as_input(t):
            # Partial derivatives, not total ones: a saved dy may itself depend on x. A view is
            # a fresh entry point whose history still reaches the caller's graph, so results
            # stay differentiable (third order); a tensor without grad becomes a new leaf.
            if t is None:
                return None
            if t.requires_grad:
                return t.view_as(t)
            return t.detach().requires_grad_(True)

        prim = [as_input(p) for p in primals]
        gouts = [as_input(g) for g in grad_outputs]
        outs = reference(*prim)
        outs = (outs,) if isinstance(outs, torch.Tensor) else tuple(outs)
        out_slots = [
            i for i, (o, g) in enumerate(zip(outs, gouts)) if g is not None and o.requires_grad
        ]
        prim_slots = [j for j, p in enumerate(prim) if p is not None]
        if not out_slots or not prim_slots:
            return tuple(result)
        first = torch.autograd.grad(
            [outs[i] for i in out_slots],
            [prim[j] for j in prim_slots],
            [gouts[i] for i in out_slots],
            create_graph=True,
            allow_unused=True,
        )
        pairs = [
            (g, grads_of_grads[j])
            for g, j in zip(first, prim_slots)
            if g is not None and g.requires_grad and grads_of_grads[j] is not None
        ]
        if not pairs:
            return tuple(result)
        wrt = [gouts[i] for i in out_slots] + [prim[j] for j in prim_slots]
        second = torch.autograd.grad(
            [g for g, _ in pairs],
            wrt,
            [gg for _, gg in pairs],
            create_graph=keep_graph,
            allow_unused=True,
        )
    for k, i in enumerate(out_slots):
        result[i] = second[k]
    for k, j in enumerate(prim_slots):
        result[len(grad_outputs) + j] = second[len(out_slots) + k]
    return tuple(result)
