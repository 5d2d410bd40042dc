#!/usr/bin/env bash
# Compile-only check of the CUDA kernels (CI has nvcc 13.0 and no GPU): builds stylegan_fast._C
# with its .cu files against a CUDA 13.0 torch in a venv of its own, out of tree (a copy of the
# sources, never the in-place _C the tests use), then checks without a GPU that the library
# loads and has a CUDA kernel registered for every op schema it implements.
#
# It also prints ptxas' resource report of every kernel (registers, spills, static shared
# memory) with the blocks per SM those allow at the block size the host launches it with, and
# fails on any spill, or on a kernel with room for fewer blocks per SM than it needs (two, or
# what its plan assumes) unless KERNELS below states why one is enough. KERNELS also holds the
# launch sizes: keep it in step with the launchers (a kernel missing from it fails too).
#
# Usage: .ci/compile_cuda.sh [--report BUILD_LOG]   (--report: only print the table of a build
# log kept with STYLEGAN_FAST_CUDA_LOG; no build)
# Environment: STYLEGAN_FAST_CUDA_VENV (default .venv-cu130, reused when it has torch 2.14.1),
# STYLEGAN_FAST_CUDA_TORCH (default torch==2.14.1), MAX_JOBS (default 2),
# TORCH_CUDA_ARCH_LIST (default 9.0: H100/H200; the table's limits are sm_90's),
# STYLEGAN_FAST_CUDA_LOG (a path: keep a copy of the build log there).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# ptxas_report BUILD_LOG: one row per kernel; exit status 1 on a spill, on a kernel with room
# for fewer blocks per SM than it needs and no stated reason, or on one missing from KERNELS.
ptxas_report() {
  python3 - "$1" <<'EOF'
import re
import shutil
import subprocess
import sys
from pathlib import Path

# sm_90 (H100/H200), per SM.
REGISTERS = 65536
REGISTER_UNIT = 256  # registers are allocated per warp, in units of 256
THREADS = 2048
MAX_BLOCKS = 32
SMEM = 228 * 1024
SMEM_RESERVED = 1024  # the runtime's share of each block's shared memory


def acc_bytes(args):
    """The accumulator size of a kernel from its template arguments (double or float)."""
    return 8 if "double" in args else 4


def one_pass_threads(a, backward):
    """plane_stats.h's max_one_pass_threads; a = [scalar_t, kChannelsLast, V]."""
    return 512 if backward or (a[1] == "true" and a[0] in ("float", "double")) else 1024


def group_sum_smem(a, threads):
    """The plane kernels' group sums: 2 acc_t per thread channels_last, 2 per warp NCHW."""
    return 2 * (threads if a[1] == "true" else threads // 32) * acc_bytes(a)


ONE_PASS_FORWARD = (
    "a block holds a whole plane in registers, 16 values a thread (128x128 with 1024 threads, "
    "32x32 channels_last with 512), which takes 56-68 registers a thread; two blocks of 1024 "
    "(512) threads would need <= 32 (64), and at 64 fp32 channels_last spilled 4-20 B")
ONE_PASS_BACKWARD = (
    "512 threads hold v and dy of a whole plane (2 x 16 values a thread, 70-100 registers); "
    "two blocks would need <= 64 registers, where ptxas spilled 4-172 B; one block has "
    "32-64 KB of loads in flight")

# (source stem, kernel) -> (threads per block the host launches it with, at most; the dynamic
# shared memory it asks for, at most; why one block per SM is enough, or None; the blocks per
# SM it must fit, at least). Callables take the template arguments as strings. "*": the
# cuda_utils.cuh kernels every file instantiates.
KERNELS = {
    ("*", "sum_partials_kernel"): (256, 0, None, 2),
    ("*", "channel_dot_kernel"): (256, 0, None, 2),
    ("bias_act_cuda", "flat_kernel"): (256, 0, None, 2),
    ("bias_act_cuda", "rows_kernel"): (256, 0, None, 2),
    # a = [kBackward, kSum, V, kAligned, scalar_t, Op]: V * threads acc_t for the column sums;
    # 2 blocks per SM are what columns_plan.h's loads in flight assume (kColumnsBlocksPerSm).
    ("bias_act_cuda", "columns_kernel"): (
        256, lambda a: int(a[2]) * 256 * acc_bytes(a) if a[1] == "true" else 0, None, 2),
    ("noise_injection_cuda", "planes_kernel"): (256, 0, None, 2),
    # a = [scalar_t, V, kAligned, kSum].
    ("noise_injection_cuda", "rows_kernel"): (
        256, lambda a: int(a[1]) * 256 * acc_bytes(a) if a[-1] == "true" else 0, None, 2),
    ("upfirdn2d_cuda", "generic_kernel"): (256, 48 * 1024, None, 2),
    ("upfirdn2d_cuda", "fast_kernel"): (256, 48 * 1024, None, 2),
}
# plane_norm_cuda.cuh's kernels, instantiated by each file that includes it (every .cu is a
# translation unit of its own). a = [scalar_t, kChannelsLast, V].
PLANE_NORM_KERNELS = {
    "forward_kernel": (
        lambda a: one_pass_threads(a, False),
        lambda a: group_sum_smem(a, one_pass_threads(a, False)), ONE_PASS_FORWARD, 2),
    "backward_kernel": (
        lambda a: one_pass_threads(a, True),
        lambda a: group_sum_smem(a, one_pass_threads(a, True)), ONE_PASS_BACKWARD, 2),
    "forward_partials_kernel": (256, lambda a: group_sum_smem(a, 256), None, 2),
    "forward_finalize_kernel": (256, 0, None, 2),
    "forward_apply_kernel": (256, 0, None, 2),
    "backward_partials_kernel": (256, lambda a: group_sum_smem(a, 256), None, 2),
    "backward_finalize_kernel": (256, 0, None, 2),
    "backward_apply_kernel": (256, lambda a: group_sum_smem(a, 256), None, 2),
}
for stem in ("layer_epilogue_cuda", "adain_cuda"):
    KERNELS.update({(stem, name): entry for name, entry in PLANE_NORM_KERNELS.items()})


def of(value, args):
    return value(args) if callable(value) else value


def split_template_args(text):
    """'a, b<c, d>, e' -> ['a', 'b<c, d>', 'e']."""
    args, depth, current = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        args.append(current.strip())
    return args


def short(demangled):
    """'void ns::(anonymous namespace)::k<c10::Half, true, 8>(ns::Params)' -> ('k', [args])."""
    text = demangled.removeprefix("void ")
    for noise in ("stylegan_fast::", "(anonymous namespace)::", "cuda::", "bias_act::", "c10::",
                  "at::"):
        text = text.replace(noise, "")
    text = re.sub(r"\(Act\)(\d+)", r"\1", text)
    name, _, rest = text.partition("<")
    if not rest:
        return name.partition("(")[0], []
    depth, end = 1, 0
    for end, ch in enumerate(rest):
        depth += ch == "<"
        depth -= ch == ">"
        if depth == 0:
            break
    return name, split_template_args(rest[:end])


def blocks_per_sm(threads, registers, smem):
    warps = -(-threads // 32)
    by_threads = THREADS // threads
    per_warp = -(-registers * 32 // REGISTER_UNIT) * REGISTER_UNIT
    by_registers = (REGISTERS // per_warp) // warps if registers else MAX_BLOCKS
    by_smem = SMEM // (smem + SMEM_RESERVED)
    limits = {"threads": by_threads, "registers": by_registers, "smem": by_smem}
    blocks = min(MAX_BLOCKS, *limits.values())
    limiter = min(limits, key=limits.get) if blocks < MAX_BLOCKS else "max"
    return blocks, limiter


log = Path(sys.argv[1]).read_text(errors="replace").splitlines()
mangled = []  # (source stem, mangled name, properties)
source = "?"
current = None
for line in log:
    status = re.match(r"\[\d+/\d+\] .*nvcc.* -c (\S+\.cu)\b", line)
    if status:
        source = Path(status.group(1)).stem
        continue
    m = re.search(r"Compiling entry function '(\S+)' for 'sm_(\d+)'", line)
    if m:
        current = {"source": source, "name": m.group(1), "arch": m.group(2)}
        mangled.append(current)
        continue
    if current is None:
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads",
                  line)
    if m:
        current["stack"], current["spill_st"], current["spill_ld"] = map(int, m.groups())
        continue
    m = re.search(r"Used (\d+) registers", line)
    if m:
        current["registers"] = int(m.group(1))
        smem = re.search(r"(\d+) bytes smem", line)
        current["smem"] = int(smem.group(1)) if smem else 0
        current = None  # the entry's report is complete

if not mangled:
    sys.exit("ptxas report: no 'Compiling entry function' lines in the build log (-Xptxas -v?)")
archs = sorted({k["arch"] for k in mangled})
filt = shutil.which("c++filt")
names = [k["name"] for k in mangled]
demangled = (subprocess.run([filt], input="\n".join(names), capture_output=True, text=True,
                            check=True).stdout.splitlines() if filt else names)

rows, failures, one_block = [], [], set()
for k, full in zip(mangled, demangled):
    name, args = short(full)
    entry = KERNELS.get((k["source"], name)) or KERNELS.get(("*", name))
    label = f"{k['source'].removesuffix('_cuda')}: {name}<{', '.join(args)}>"
    if entry is None:
        failures.append(f"{label}: not in KERNELS (add its launch size to .ci/compile_cuda.sh)")
        continue
    threads, dynamic_smem = of(entry[0], args), of(entry[1], args)
    reason, needed = entry[2], entry[3]
    blocks, limiter = blocks_per_sm(threads, k.get("registers", 0),
                                    k.get("smem", 0) + dynamic_smem)
    notes = []
    if k.get("spill_st", 0) or k.get("spill_ld", 0):
        failures.append(f"{label}: spills {k['spill_st']} B stores, {k['spill_ld']} B loads")
        notes.append("SPILLS")
    if blocks < 1:
        failures.append(f"{label}: does not fit an SM at {threads} threads ({limiter})")
        notes.append("DOES NOT FIT")
    elif blocks < 2 and reason is not None:
        notes.append("1 block/SM: see below")
        one_block.add((k["source"], name))
    elif blocks < needed:
        failures.append(f"{label}: {blocks} block(s) per SM ({limiter}), needs {needed}")
        notes.append(f"NEEDS {needed} BLOCKS/SM")
    rows.append((label, threads, k.get("registers", 0), k.get("stack", 0), k.get("spill_st", 0),
                 k.get("spill_ld", 0), k.get("smem", 0), dynamic_smem, blocks, limiter,
                 " ".join(notes)))

print(f"\nptxas resource usage (sm_{','.join(archs)}; blocks/SM at the launched block size, "
      f"limits: {REGISTERS} registers, {THREADS} threads, {MAX_BLOCKS} blocks, "
      f"{SMEM // 1024} KB smem per SM)")
header = ("kernel", "threads", "regs", "stack", "spill st", "spill ld", "smem", "dyn smem",
          "blocks/SM", "limit", "")
widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
for r in [header] + sorted(rows):
    print("  ".join(str(v).ljust(w) if i in (0, 9, 10) else str(v).rjust(w)
                    for i, (v, w) in enumerate(zip(r, widths))).rstrip())
for src, name in sorted(one_block):
    reason = KERNELS[(src, name)][2]
    print(f"1 block/SM is enough for {src.removesuffix('_cuda')}: {name}: {reason}")
print(f"{len(rows)} kernels; max registers {max((r[2] for r in rows), default=0)}; "
      f"spilling: {sum(1 for r in rows if r[4] or r[5])}")
if failures:
    print("\n".join(["ptxas report FAILED:"] + ["  " + f for f in failures]))
    sys.exit(1)
EOF
}

if [ "${1:-}" = "--report" ]; then
  ptxas_report "$2"
  exit
fi

venv=${STYLEGAN_FAST_CUDA_VENV:-$repo/.venv-cu130}
torch_req=${STYLEGAN_FAST_CUDA_TORCH:-torch==2.14.1}
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.version.cuda is None)" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$torch_req" numpy ninja setuptools
fi
py="$venv/bin/python"
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# The local toolkit lacks some headers torch includes (cusparse.h): take them from the CUDA
# wheels torch installed.
export CPATH="$site/nvidia/cu13/include${CPATH:+:$CPATH}"
export LIBRARY_PATH="$site/nvidia/cu13/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-2}
# ptxas' per-kernel report for this check only: nvcc appends NVCC_APPEND_FLAGS to every
# command line, so the library's own flags (stylegan_fast/_build_flags.py) stay as they are.
export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:+$NVCC_APPEND_FLAGS }-Xptxas -v"

build=$(mktemp -d "${TMPDIR:-/tmp}/stylegan_fast_cuda.XXXXXX")
trap 'rm -rf "$build"' EXIT

# torch links the extension with -lcudart from $CUDA_HOME/lib64; CUDA_HOME is guessed from the
# nvcc on the PATH (/usr/local here, which has no lib64), and the CUDA wheels ship only
# libcudart.so.13. Link against the wheel's runtime (the one torch loads) through a
# linker-name symlink.
mkdir "$build/cudart"
ln -s "$site/nvidia/cu13/lib/libcudart.so.13" "$build/cudart/libcudart.so"
export LIBRARY_PATH="$build/cudart:$LIBRARY_PATH"
cp -r setup.py pyproject.toml README.md csrc "$build/"
mkdir "$build/stylegan_fast"
cp stylegan_fast/_build_flags.py "$build/stylegan_fast/"

echo "+ building stylegan_fast._C with CUDA (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST, MAX_JOBS=$MAX_JOBS) in $build"
start=$(date +%s)
if ! (cd "$build" && "$py" setup.py -q build_ext --inplace >"$build/build.log" 2>&1); then
  grep -i -B2 -A6 "error" "$build/build.log" | head -n 80 || true
  tail -n 20 "$build/build.log"
  echo "the CUDA build failed" >&2
  exit 1
fi
grep -i "warning" "$build/build.log" | grep -v "^$" | head -n 40 || true
echo "compiled in $(( $(date +%s) - start )) s"
if [ -n "${STYLEGAN_FAST_CUDA_LOG:-}" ]; then cp "$build/build.log" "$STYLEGAN_FAST_CUDA_LOG"; fi
report_status=0
ptxas_report "$build/build.log" || report_status=$?

"$py" - "$build/stylegan_fast" <<'EOF'
import glob
import json
import sys
from pathlib import Path

import torch

package = Path(sys.argv[1])
info = json.loads((package / "_build_info.json").read_text())
assert info["with_cuda"], f"the extension was built without CUDA: {info}"
[library] = glob.glob(str(package / "_C*.so"))
# The op schemas live in Python (ops/*/registration.py); the dispatcher records kernels for
# them by name, so the library alone says which ones it implements.
torch.ops.load_library(library)
ops = [
    "bias_act_fwd",
    "bias_act_bwd",
    "upfirdn2d_fwd",
    "layer_epilogue_fwd",
    "layer_epilogue_bwd",
    "adain_fwd",
    "adain_bwd",
    "noise_injection_fwd",
    "noise_injection_bwd",
]
missing = []
for op in ops:
    for key in ("CPU", "CUDA"):
        if not torch._C._dispatch_has_kernel_for_dispatch_key(f"stylegan_fast::{op}", key):
            missing.append(f"{op} ({key})")
print(f"loaded {Path(library).name} (torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"GPU visible: {torch.cuda.is_available()}); sources: {', '.join(info['sources'])}")
if missing:
    sys.exit("no kernel registered for: " + ", ".join(missing))
print(f"CUDA and CPU kernels registered for: {', '.join(ops)}")
EOF
if [ "$report_status" -ne 0 ]; then
  echo "the ptxas report failed: a kernel spills or has room for one block per SM (see above)" >&2
  exit 1
fi
