"""Compile-only check of the Triton kernels for a Hopper GPU (sm_90) on a machine without one.

The interpreter tests (TRITON_INTERPRET=1) prove what the kernels compute, not that they lower
to GPU code: a construct the interpreter accepts can still fail in the compiler (layouts,
reshapes, dtype promotion) or spill registers. This runs every Triton launcher of the package
on StyleGAN shapes with CPU tensors posing as CUDA ones, records each launch's kernel,
argument types, constexprs and warps instead of running it (pass 1, interpreter mode, so
nothing executes), then compiles each distinct specialization with ``triton.compile`` for
``GPUTarget("cuda", 90, 32)`` (pass 2, a fresh process, compiler mode) and reports registers
and spill stack from the cubin. Exit status 1 if any kernel fails to compile.

Run: ``python .ci/compile_triton.py`` from the repository root (needs triton; no GPU). CI runs
it after the README's test command, in that command's environment (~3 minutes on 2 cores).
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
    shapes = [(4, 512, 8, 8), (2, 512, 32, 32), (2, 256, 128, 128), (1, 32, 512, 512)]
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
    # Launches that differ only in runtime integers (sizes, strides) compile to one kernel.
    def typed(v):
        if isinstance(v, bool) or v is None or isinstance(v, dict):
            return v
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


def compile_launch(launch: dict) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = getattr(importlib.import_module(launch["module"]), launch["name"])
    options = {k: launch["kwargs"][k] for k in ("num_warps", "num_stages") if k in launch["kwargs"]}
    values = dict(zip(kernel.arg_names, launch["args"]))
    values.update({k: v for k, v in launch["kwargs"].items() if k not in options})
    signature, constexprs, attrs = {}, {}, {}
    for i, param in enumerate(kernel.params):
        v = values[param.name]
        if param.is_constexpr or v is None or (isinstance(v, dict) and "tensor" not in v):
            signature[param.name] = "constexpr"
            constexprs[param.name] = _value(v)
        elif isinstance(v, dict):  # a tensor: its data pointer, 16-byte aligned
            signature[param.name] = "*" + _TRITON_TYPES[v["tensor"]]
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(v, bool):
            signature[param.name] = "i1"
        elif isinstance(v, int):
            signature[param.name] = "i32" if -(2**31) <= v < 2**31 else "i64"
        else:
            signature[param.name] = "fp32"
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs, attrs=attrs)
    start = time.perf_counter()
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, **_resources(compiled.asm["cubin"])}


def _resources(cubin: bytes) -> dict:
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not tool.exists():
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [str(tool), "--dump-resource-usage", f.name], capture_output=True, text=True
        ).stdout
    found = {k: re.search(rf"{k}:(\d+)", text) for k in ("REG", "STACK")}
    return {k.lower(): int(m.group(1)) for k, m in found.items() if m}


def main() -> int:
    if os.environ.get("STYLEGAN_FAST_TRITON_PASS") == "record":
        launches = record_launches()
        unique = {_specialization_key(launch): launch for launch in launches}
        json.dump({"launches": len(launches), "kernels": list(unique.values())}, sys.stdout)
        return 0

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
    kernels = recorded["kernels"]
    print(
        f"{recorded['launches']} launches recorded, {len(kernels)} distinct specializations; "
        f"compiling each for sm_90"
    )
    failures, rows = 0, []
    for launch in kernels:
        parts = launch["module"].split(".")
        label = f"{parts[-2] if parts[-1] == 'triton' else parts[-1]}.{launch['name']}"
        try:
            info = compile_launch(launch)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, then counted
            failures += 1
            print(f"FAILED {label}: {type(exc).__name__}: {str(exc)[:2000]}")
            continue
        rows.append((label, info))
        if info.get("stack"):
            dtypes = sorted(
                {a["tensor"] for a in launch["args"] if isinstance(a, dict) and "tensor" in a}
            )
            constexprs = {k: v for k, v in launch["kwargs"].items() if k.isupper()}
            print(f"spills {info['stack']} B: {label} {'/'.join(dtypes)} {constexprs}")
    by_kernel: dict[str, list[dict]] = {}
    for label, info in rows:
        by_kernel.setdefault(label, []).append(info)
    print(f"{'kernel':48s} {'variants':>8s} {'regs (max)':>10s} {'spill stack (max)':>18s}")
    for label, infos in sorted(by_kernel.items()):
        regs = max((i.get("reg", 0) for i in infos), default=0)
        stack = max((i.get("stack", 0) for i in infos), default=0)
        print(f"{label:48s} {len(infos):8d} {regs:10d} {stack:18d}")
    print(f"compiled {len(rows)} of {len(kernels)} in {sum(i['seconds'] for _, i in rows):.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
