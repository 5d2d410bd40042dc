#!/usr/bin/env bash
# Compile-only check of the CUDA kernels (CI has nvcc 13.0 and no GPU): builds stylegan_fast._C
# with its .cu files against a CUDA 13.0 torch in a venv of its own, out of tree (a copy of the
# sources, never the in-place _C the tests use), then checks without a GPU that the library
# loads and has a CUDA kernel registered for every op schema it implements.
#
# Environment: STYLEGAN_FAST_CUDA_VENV (default .venv-cu130, reused when it has torch 2.14.1),
# STYLEGAN_FAST_CUDA_TORCH (default torch==2.14.1), MAX_JOBS (default 2),
# TORCH_CUDA_ARCH_LIST (default 9.0: H100/H200).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

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
