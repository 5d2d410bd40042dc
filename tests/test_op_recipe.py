"""The recipe for a new op, and the test that holds every registered op to it.

A new op ``<op>`` touches these files (every current op has each of them):

1. ``stylegan_fast/ops/<op>/reference.py``: the eager PyTorch reference, the specification.
2. ``stylegan_fast/ops/<op>/registration.py``: the schemas, fake functions, autograd and
   gradient table, registered by ``ops/_registry.define_op`` (which defines ``<op>_fwd`` /
   ``<op>_bwd`` and ``*_triton``, loads ``triton.py`` lazily and registers with ``_backend``).
3. ``stylegan_fast/ops/<op>/triton.py``: the Triton kernels and their launchers ``forward``
   (and ``backward`` when the op has a bwd op).
4. ``stylegan_fast/ops/<op>/__init__.py``: the public function (checks its arguments,
   ``_backend.resolve``, then the reference or ``registration.OP.kernels(backend).fwd``).
5. ``stylegan_fast/ops/__init__.py``: imports and exports it, before ``_backend.freeze()``
   (a registration after freeze is refused).
6. ``csrc/<op>.cpp``: the CPU kernels, registered with
   ``STYLEGAN_FAST_REGISTER_FWD_BWD(<op>, CPU, <fwd>, <bwd>)`` (csrc/registration.h; an op
   without a bwd op writes its ``TORCH_LIBRARY_IMPL(stylegan_fast, CPU, m)`` block itself).
7. ``csrc/<op>_cuda.cu``: the CUDA kernels, likewise for the ``CUDA`` key. Both include
   ``csrc/<op>.h``: the element math and checks as ``C10_HOST_DEVICE`` functions, and
   ``EntryPoints<label, forward, backward>``, the registered functions (the schema's
   parameters, then the checks) written once, calling each backend's kernels (upfirdn2d, with
   no bwd op, writes its one registered function in each file).
8. ``stylegan_fast/auto_preferences.json``: the op's ``impl="auto"`` order on CUDA tensors
   (``tests/test_preferences.py`` requires an entry per op, layout and size class).
9. ``tests/ops/test_<op>.py``: the sections every op's tests have (see ARCHITECTURE.md),
   parametrized over ``testing.implemented_backends(OP, "cpu")``; its ``cuda``-marked tests
   (and ``tests/ops/test_cuda_kernels.py``'s) cover the GPU backends.
10. ``stylegan_fast/bench/<op>.py``: its ``OpBench``, listed in ``BENCHES``
    (``stylegan_fast/bench/__init__.py``).

Optional: ``csrc/autograd.cpp`` (a C++ first-order autograd node, ~10x cheaper per call than
the Python one; it must follow the gradient table, ``tests/ops/test_autograd_requests.py``),
an ``nn`` module, ``benchmarks/bench_<op>.py`` (a two-line script).

The test fails, naming the op and what it lacks, when an op has no such file, a schema without
a CPU kernel (asked of the dispatcher) or a CUDA one (the csrc sources must register it: no
CUDA build is needed to check), a backend no test requires (``testing.require_backend(op,
backend, device)`` in a test of ``tests/ops``, with ``backend`` a literal or a parametrized
argument), or no benchmark.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import sys
from pathlib import Path

import pytest

from stylegan_fast import _backend, _library, testing
from stylegan_fast.bench import BENCHES
from stylegan_fast.ops import _registry

REPO = Path(__file__).resolve().parents[1]
OPS = sorted(_backend.registered_ops())


def _schemas(op: _registry.RegisteredOp) -> list[str]:
    kernels = op.extension
    ops = [kernels.fwd] + ([kernels.bwd] if kernels.bwd is not None else [])
    return [o.name().split("::")[1] for o in ops]


def test_every_registered_op_came_through_the_registry():
    assert sorted(_registry.OPS) == OPS


@pytest.mark.parametrize("op_name", OPS)
def test_op_has_its_files(op_name):
    package = REPO / "stylegan_fast" / "ops" / op_name
    for name in ("reference.py", "registration.py", "triton.py", "__init__.py"):
        assert (package / name).is_file(), f"{op_name}: ops/{op_name}/{name} is missing"
    assert (REPO / "tests" / "ops" / f"test_{op_name}.py").is_file()
    entry_points = {"forward"} | ({"backward"} if _registry.OPS[op_name].bwd else set())
    tree = ast.parse((package / "triton.py").read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert entry_points <= defined, f"{op_name}: triton.py lacks {entry_points - defined}"


@pytest.mark.parametrize("op_name", OPS)
def test_schemas_have_cpu_and_cuda_kernels(op_name):
    assert _library.EXTENSION.loaded, _library.EXTENSION.reason
    cuda = _cuda_registrations()
    for schema in _schemas(_registry.OPS[op_name]):
        assert _library.has_kernel(schema, "CPU"), f"{schema}: _C has no CPU kernel"
        assert schema in cuda, f"{schema}: no csrc/*.cu registers it for CUDA"


def _cuda_registrations() -> set[str]:
    """The schemas the CUDA sources register for the CUDA key."""
    found = set()
    for path in sorted((REPO / "csrc").glob("*.cu")):
        found |= testing.csrc_registrations(path.read_text(), "CUDA")
    return found


def test_every_backend_an_op_implements_is_tested():
    required = _required_backends()
    missing = [
        f"{op} {backend} on {device}"
        for op in OPS
        for device in ("cpu", "cuda")
        for backend in testing.implemented_backends(op, device)
        if not (device == "cuda" and backend == "ref")  # the oracle, run on CPU
        and (op, backend, device) not in required
    ]
    assert not missing, f"no test in tests/ops requires: {', '.join(missing)}"


def _required_backends() -> set[tuple[str, str, str]]:
    """Every ``(op, backend, device)`` some test function of ``tests/ops`` passes to
    ``testing.require_backend``; a parametrized argument counts with each of its values."""
    required = set()
    for path in sorted((REPO / "tests" / "ops").glob("test_*.py")):
        module = _import(path)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                params = _parametrized(getattr(module, node.name))
                for call in ast.walk(node):
                    if isinstance(call, ast.Call) and _called(call) == "require_backend":
                        values = [_values(arg, params, module) for arg in call.args[:3]]
                        required |= set(itertools.product(*values))
    return required


def _import(path: Path):
    """The test module at ``path`` (for its parametrize marks and constants), imported under a
    name of its own, beside the one pytest imported."""
    name = f"_recipe_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up while it runs
        spec.loader.exec_module(module)
    return sys.modules[name]


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _parametrized(test) -> dict[str, set]:
    """Each parametrized argument of ``test`` and the strings it takes."""
    values: dict[str, set] = {}
    for mark in getattr(test, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names, cases = mark.args[0], mark.args[1]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        for case in cases:
            case = getattr(case, "values", case)  # pytest.param(...)
            case = case if len(names) > 1 else (case,)
            for name, value in zip(names, case):
                if isinstance(value, str):  # op, backend and device names
                    values.setdefault(name, set()).add(value)
    return values


def _values(arg: ast.expr, params: dict[str, set], module) -> set:
    if isinstance(arg, ast.Constant):
        return {arg.value}
    if isinstance(arg, ast.Name):
        if arg.id in params:
            return params[arg.id]
        if hasattr(module, arg.id):
            return {getattr(module, arg.id)}
    return set()  # an expression the check cannot follow: counts for nothing


def test_every_op_has_a_benchmark():
    benched = {bench.backend_op or bench.op for bench in BENCHES.values()}
    missing = set(OPS) - benched
    assert not missing, f"stylegan_fast.bench.BENCHES times no benchmark of {sorted(missing)}"
