#!/usr/bin/env bash
# One command on a GPU machine: build the CUDA kernels, run the GPU test suite, benchmark the
# ops, and print the benchmark table last.
#
#   benchmarks/run_gpu.sh [extra `stylegan-fast bench` arguments]
#
# Installs the project in the current Python environment (which must already have a CUDA
# torch, e.g. `pip install torch==2.14.1`, and pytest + triton for the tests), editable and
# without dependencies. TORCH_CUDA_ARCH_LIST defaults to 9.0 (H100/H200); MAX_JOBS to the CPU
# count. Benchmark rows are appended to benchmarks/results/<device>.{csv,md}, with the GPU,
# versions, date and command.
set -euo pipefail
cd "$(dirname "$0")/.."

python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch ' + torch.__version__)"
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}

echo "+ pip install --no-build-isolation --no-deps -e . (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST)"
start=$(date +%s)
python -m pip install -q --no-build-isolation --no-deps -e .
echo "built in $(( $(date +%s) - start )) s"
stylegan-fast info

echo "+ TRITON_INTERPRET=0 python -m pytest -m cuda -q"
# A failure is reported at the end: the benchmarks still run, so one GPU session gives both.
tests_rc=0
TRITON_INTERPRET=0 python -m pytest -m cuda -q || tests_rc=$?

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "+ stylegan-fast bench $*"
stylegan-fast bench --results-dir benchmarks/results "$@" 2>&1 | tee "$log"

echo
echo "=== benchmark table ($(python -c 'import torch; print(torch.cuda.get_device_name(0))')) ==="
# The bench prints its tables after the per-row progress lines: from the first table title on.
sed -n '/^\*\*/,$p' "$log"
if [ "$tests_rc" -ne 0 ]; then
  echo "GPU tests FAILED (pytest exit status $tests_rc): see above" >&2
  exit "$tests_rc"
fi
