"""Compile-only check of the Triton kernels for a Hopper GPU (sm_90) on a machine without one.

The interpreter tests (TRITON_INTERPRET=1) prove what the kernels compute, not that they lower
to GPU code: a construct the interpreter accepts can still fail in the compiler (layouts,
reshapes, dtype promotion), spill registers, or use so many that an SM holds a single
program. This runs every Triton launcher of the package on StyleGAN shapes with CPU tensors
posing as CUDA ones, records each launch's kernel, argument types, constexprs and warps
instead of running it (pass 1, interpreter mode, so nothing executes), then compiles each
distinct specialization, as Triton's JIT would form it (an int that is 1 or a multiple of 16
specialised on, pointers 16-byte aligned), with ``triton.compile`` for
``GPUTarget("cuda", 90, 32)`` (pass 2, a fresh process, compiler mode) and reports, per
kernel, registers and spill stack from the cubin (cuobjdump), shared memory, and the programs
per SM those allow on an H100 (``_triton_launch.resident_programs``).

Exit status 1 if any kernel fails to compile, spills, takes a float constexpr (one kernel
compiled per value: floats must be runtime arguments), or allows fewer than two resident
programs per SM (a program in its reduction or tail then leaves the SM idle) unless the
kernel is in ``ONE_PROGRAM_PER_SM_ALLOWED`` with the reason one is enough.

Run: ``python .ci/compile_triton.py`` from the repository root (needs triton; no GPU), under
each Triton version we support (3.6 and 3.9). ``--kernel NAME`` compiles only kernels whose
label contains NAME; ``--verbose`` prints every specialization. CI runs it after the README's
test command, in that command's environment (~2.5 minutes per Triton version on 2 cores: 778
specializations, 701 distinct kernels).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SM90_SMS = 132  # H100 SXM: the launch plans size grids by it


# --- pass 1: record the launches -------------------------------------------------------------


def _describe(value):
    import torch
    import triton.language as tl

    if isinstance(value, torch.Tensor):
        return {"tensor": str(value.dtype).removeprefix("torch."), "aligned": True}
    if isinstance(value, tl.dtype):
        return {"tl_dtype": value.name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"tuple": [_describe(v) for v in value]}
    raise TypeError(f"cannot record a launch argument of type {type(value).__name__}")


def record_launches() -> list[dict]:
    """Runs the ops' Triton paths (fwd, bwd, double bwd) with the kernels stubbed out."""
    import types

    import torch
    import triton.runtime.interpreter as interpreter

    launches = []

    def record(self, *args, grid, warmup=False, **kwargs):
        launches.append(
            {
                "module": self.fn.__module__,
                "name": self.fn.__name__,
                "args": [_describe(a) for a in args],
                "kwargs": {k: _describe(v) for k, v in kwargs.items()},
            }
        )

    interpreter.InterpretedFunction.run = record
    # Pose as a CUDA device so the launchers take their GPU plans (tile sizes, warps, grids).
    torch.Tensor.is_cuda = property(lambda self: True)
    torch.cuda.get_device_properties = lambda *a, **k: types.SimpleNamespace(
        multi_processor_count=SM90_SMS
    )

    from stylegan_fast import ops
    from stylegan_fast.ops import setup_filter

    f = setup_filter([1, 3, 3, 1])
    # StyleGAN's layers from 4x4 to 512x512 (each plane-norm plan in both layouts), and one
    # odd shape: sizes that are not multiples of 16 compile without Triton's divisibility
    # hints (no vector accesses), the most registers a kernel takes.
    shapes = [
        (4, 512, 4, 4),
        (4, 512, 8, 8),
        (2, 512, 16, 16),
        (2, 512, 32, 32),
        (2, 512, 64, 64),
        (2, 256, 128, 128),
        (1, 32, 512, 512),
        (3, 20, 9, 11),
    ]
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for shape in shapes:
            for channels_last in (False, True):
                _run_ops(ops, f, dtype, shape, channels_last)
    return launches


def _run_ops(ops, f, dtype, shape, channels_last: bool) -> None:
    """Forward, backward and (bias_act, downsample2d: R1's) double backward of every op with
    impl="triton" on ``shape`` in ``dtype``."""
    import torch

    n, c, h, w = shape
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def leaf(*size, fmt=torch.contiguous_format):
        return torch.randn(*size).to(dtype=dtype, memory_format=fmt).requires_grad_()

    def grads(y, *inputs, create_graph=False):
        return torch.autograd.grad(y.float().square().sum(), inputs, create_graph=create_graph)

    x = leaf(n, c, h, w, fmt=fmt)
    b, noise = leaf(c), leaf(n, 1, h, w)
    strength, scale, shift = leaf(c), leaf(n, c), leaf(n, c)
    (gx,) = grads(ops.bias_act(x, b, act="lrelu", impl="triton"), x, create_graph=True)
    grads(gx, x, b)
    ops.bias_act(x, b, act="swish", clamp=256.0, impl="triton")
    (gx,) = grads(ops.downsample2d(x, f, impl="triton"), x, create_graph=True)
    grads(gx, x)
    if h <= 128:  # the 4x larger output of a 512² upsample is a big CPU buffer to no purpose
        grads(ops.upsample2d(x, f, impl="triton"), x)
    grads(ops.filter2d(x, f, impl="triton"), x)
    ops.upfirdn2d(x, f, up=2, down=2, padding=[1, 2, 0, 1], impl="triton")
    grads(ops.noise_injection(x, noise, strength, impl="triton"), x, noise, strength)
    grads(ops.adain(x, scale, shift, impl="triton"), x, scale, shift)
    y = ops.layer_epilogue(x, noise, strength, b, scale, shift, impl="triton")
    grads(y, x, noise, strength, b, scale, shift)


def _specialization_key(launch: dict) -> str:
    # Launches that differ only in runtime values Triton does not specialise on compile to one
    # kernel: ints by whether they are 1 and multiples of 16 (and fit int32), floats not at all.
    def typed(v):
        if isinstance(v, bool) or v is None or isinstance(v, dict):
            return v
        if isinstance(v, int):
            return ["int", v == 1, v % 16 == 0, -(2**31) <= v < 2**31]
        return type(v).__name__

    return json.dumps(
        [launch["module"], launch["name"], [typed(a) for a in launch["args"]], launch["kwargs"]],
        sort_keys=True,
    )


# --- pass 2: compile for sm_90 ---------------------------------------------------------------

_TRITON_TYPES = {
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
    "float64": "fp64",
    "int32": "i32",
    "int64": "i64",
    "int8": "i8",
    "uint8": "u8",
    "bool": "i1",
}


def _value(v):
    import triton.language as tl

    if isinstance(v, dict) and "tl_dtype" in v:
        return tl.dtype(v["tl_dtype"])
    if isinstance(v, dict) and "tuple" in v:
        return tuple(_value(e) for e in v["tuple"])
    return v


def compile_inputs(launch: dict):
    """``(kernel, signature, constexprs, attrs, options)`` as Triton's JIT forms them for the
    launch (``native_specialize_impl``, as in Triton 3.6 and 3.9: an int that is 1 becomes a
    constexpr, a multiple of 16 gets ``tt.divisibility``; pointers are taken 16-byte aligned)."""
    from triton.backends.compiler import BaseBackend
    from triton.backends.nvidia.compiler import CUDABackend
    from triton.runtime.jit import native_specialize_impl

    kernel = getattr(importlib.import_module(launch["module"]), launch["name"])
    options = {k: launch["kwargs"][k] for k in ("num_warps", "num_stages") if k in launch["kwargs"]}
    values = dict(zip(kernel.arg_names, launch["args"]))
    values.update({k: v for k, v in launch["kwargs"].items() if k not in options})
    signature, constexprs, attrs = {}, {}, {}
    for i, param in enumerate(kernel.params):
        v = values[param.name]
        if param.is_constexpr or (isinstance(v, dict) and "tensor" not in v):
            signature[param.name] = "constexpr"
            constexprs[param.name] = _value(v)
        elif isinstance(v, dict):  # a tensor: its data pointer
            signature[param.name] = "*" + _TRITON_TYPES[v["tensor"]]
            if not param.do_not_specialize_on_alignment:
                attrs[(i,)] = [["tt.divisibility", 16]]
        else:
            kind, key = native_specialize_impl(
                CUDABackend, v, False, not param.do_not_specialize, True
            )
            signature[param.name] = kind
            if kind == "constexpr":
                constexprs[param.name] = v
            elif key:
                attrs[(i,)] = BaseBackend.parse_attr(key)
    return kernel, signature, constexprs, attrs, options


def _compile_key(inputs) -> str:
    kernel, signature, constexprs, attrs, options = inputs
    return repr(
        (kernel.fn.__module__, kernel.fn.__name__, sorted(signature.items()),
         sorted((k, repr(v)) for k, v in constexprs.items()), sorted(attrs.items()),
         sorted(options.items()))
    )  # fmt: skip


def compile_launch(inputs) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel, signature, constexprs, attrs, options = inputs
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    start = time.perf_counter()
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "warps": compiled.metadata.num_warps,
        "shared": compiled.metadata.shared,
        **_resources(compiled.asm["cubin"]),
    }


def _resources(cubin: bytes) -> dict:
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.exists():
        raise RuntimeError(f"{tool} is missing: registers and spills cannot be read")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [str(tool), "--dump-resource-usage", f.name], capture_output=True, text=True
        ).stdout
    found = {k: re.search(rf"{k}:(\d+)", text) for k in ("REG", "STACK")}
    if found["REG"] is None:
        raise RuntimeError(f"cuobjdump reported no registers:\n{text}")
    return {k.lower(): int(m.group(1)) if m else 0 for k, m in found.items()}


# --- the verdict -----------------------------------------------------------------------------

# Kernels allowed to hold a single program per SM, each with the reason one is enough.
# (Empty: every kernel's every plan leaves room for two.)
ONE_PROGRAM_PER_SM_ALLOWED: dict[str, str] = {}


def _label(launch: dict) -> str:
    # ops.<op>.triton.<kernel> and ops._plane_norm.kernels.<kernel>: named by their package.
    parts = launch["module"].split(".")
    return f"{parts[-2] if parts[-1] in ('triton', 'kernels') else parts[-1]}.{launch['name']}"


def _describe_variant(launch: dict) -> str:
    dtypes = sorted({a["tensor"] for a in launch["args"] if isinstance(a, dict) and "tensor" in a})
    constexprs = {
        k: (v["tl_dtype"] if isinstance(v, dict) and "tl_dtype" in v else v)
        for k, v in launch["kwargs"].items()
        if k.isupper() or k == "num_warps"
    }
    return f"{'/'.join(dtypes)} {constexprs}"


def _float_constexprs(launch: dict) -> list[str]:
    """Constexpr arguments of the launch that are floats (each value compiles a kernel)."""
    kernel = getattr(importlib.import_module(launch["module"]), launch["name"])
    by_name = {p.name: p for p in kernel.params}
    values = dict(zip(kernel.arg_names, launch["args"]))
    values.update(launch["kwargs"])
    floats = []
    for name, v in values.items():
        param = by_name.get(name)
        constexpr = param is None or param.is_constexpr  # launch options are compile-time too
        if constexpr and isinstance(v, float):
            floats.append(f"{name}={v}")
    return floats


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernel", default="", help="only kernels whose label contains this")
    parser.add_argument("--verbose", action="store_true", help="print every specialization")
    opts = parser.parse_args(argv)

    if os.environ.get("STYLEGAN_FAST_TRITON_PASS") == "record":
        launches = record_launches()
        unique = {_specialization_key(launch): launch for launch in launches}
        json.dump({"launches": len(launches), "kernels": list(unique.values())}, sys.stdout)
        return 0

    import triton

    from stylegan_fast.ops._triton_launch import SM90, resident_programs

    env = {
        **os.environ,
        "TRITON_INTERPRET": "1",
        "STYLEGAN_FAST_TRITON_PASS": "record",
        "STYLEGAN_FAST_DISABLE_EXTENSION": "1",
    }
    proc = subprocess.run(
        [sys.executable, __file__], cwd=REPO, env=env, capture_output=True, text=True
    )
    if proc.returncode:
        print(proc.stderr[-4000:], file=sys.stderr)
        print("recording the Triton launches failed", file=sys.stderr)
        return 1
    recorded = json.loads(proc.stdout)
    # A cold cache of our own, so every kernel is really compiled (not read back from ~/.triton).
    os.environ.setdefault("TRITON_CACHE_DIR", tempfile.mkdtemp(prefix="stylegan_fast_triton_"))
    kernels = [k for k in recorded["kernels"] if opts.kernel in _label(k)]
    print(
        f"Triton {triton.__version__}: {recorded['launches']} launches recorded, "
        f"{len(recorded['kernels'])} distinct specializations; compiling {len(kernels)} for sm_90"
    )
    failures, rows, compiled_keys = [], [], set()
    for launch in kernels:
        label = _label(launch)
        floats = _float_constexprs(launch)
        if floats:
            failures.append(f"float constexpr {', '.join(floats)}: {label}")
        try:
            inputs = compile_inputs(launch)
            key = _compile_key(inputs)
            if key in compiled_keys:  # launches Triton would serve with one kernel
                continue
            compiled_keys.add(key)
            info = compile_launch(inputs)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then counted
            failures.append(f"compile failed: {label}: {type(exc).__name__}: {str(exc)[:2000]}")
            continue
        info["programs"] = resident_programs(info["reg"], info["warps"], info["shared"], SM90)
        rows.append((label, launch, info))
        variant = _describe_variant(launch)
        resources = (
            f"{info['reg']} regs, {info['stack']} B spill, {info['shared']} B smem, "
            f"{info['warps']} warps, {info['programs']} programs/SM"
        )
        if opts.verbose:
            print(f"  {label} {resources}: {variant}")
        if info["stack"]:
            failures.append(f"spills {info['stack']} B: {label} ({resources}) {variant}")
        if info["programs"] < 2 and label not in ONE_PROGRAM_PER_SM_ALLOWED:
            failures.append(f"{info['programs']} program/SM: {label} ({resources}) {variant}")
    by_kernel: dict[str, list[dict]] = {}
    for label, _, info in rows:
        by_kernel.setdefault(label, []).append(info)
    print(
        f"{'kernel':46s} {'variants':>8s} {'regs':>8s} {'spill B':>7s} {'smem B':>7s} "
        f"{'warps':>6s} {'programs/SM':>11s}"
    )
    for label, infos in sorted(by_kernel.items()):

        def span(key, infos=infos):
            low, high = min(i[key] for i in infos), max(i[key] for i in infos)
            return str(low) if low == high else f"{low}-{high}"

        print(
            f"{label:46s} {len(infos):8d} {span('reg'):>8s} {max(i['stack'] for i in infos):7d} "
            f"{max(i['shared'] for i in infos):7d} {span('warps'):>6s} {span('programs'):>11s}"
        )
    for label, reason in ONE_PROGRAM_PER_SM_ALLOWED.items():
        print(f"allowed one program per SM: {label}: {reason}")
    seconds = sum(i["seconds"] for *_, i in rows)
    print(
        f"compiled {len(rows)} distinct kernels of {len(kernels)} launch kinds in {seconds:.0f} s"
    )
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
