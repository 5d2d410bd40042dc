#!/usr/bin/env bash
# One short, prepared check of stylegan_fast on a GPU: environment, build, correctness (CUDA
# kernel parity, Triton GPU tests, a compute-sanitizer subset), a lean benchmark (the anchor
# table's op rows, end to end with and without CUDA graphs) and a summary printed last.
#
#   benchmarks/gpu_check.sh OUTDIR             on a GPU machine: ends within 9 minutes
#   benchmarks/gpu_check.sh --dry-run OUTDIR   the same phases on a CPU (tiny shapes, Triton
#                                              under the interpreter); CI runs it
#
# Each phase runs under its own time limit, min(its cap, the time left before the deadline
# minus what the summary needs), so the script always ends and says which phases completed
# (OUTDIR/phases.tsv). Everything it writes goes to OUTDIR, at most 8 files: gpu_check.log,
# phases.tsv, env.json, ops.csv, e2e.csv, summary.md, auto_preferences.json.
#
# Environment: PYTHON (default python3; the GPU image has no `python`), GPU_CHECK_SECONDS (the
# deadline, default 540 = 9 minutes), GIT_SHA (recorded; default from git). On the GPU it
# builds stylegan_fast._C in place for the visible GPU's architecture alone, with
# MAX_JOBS=$(nproc), unless a _C built for this torch and GPU is there already.
set -uo pipefail
cd "$(dirname "$0")/.."

dry=""
if [ "${1:-}" = "--dry-run" ]; then
  dry="--dry-run"
  shift
fi
if [ $# -ne 1 ]; then
  echo "usage: benchmarks/gpu_check.sh [--dry-run] OUTDIR" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
total=${GPU_CHECK_SECONDS:-540}
start=$(date +%s)
: >"$out/gpu_check.log"
: >"$out/phases.tsv"
exec > >(tee -a "$out/gpu_check.log") 2>&1

export PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export GIT_SHA=${GIT_SHA:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
export OUT=$out DRY=$dry
jobs=$(nproc)
if [ -n "$dry" ]; then
  export TRITON_INTERPRET=1  # Triton runs on CPU tensors
  jobs=2
else
  export TRITON_INTERPRET=0
fi
export JOBS=$jobs

# step STEP ARGS...: one step of the Python side (stylegan_fast/bench/gpu_check).
step() { "$PYTHON" -m stylegan_fast.bench.gpu_check "$1" --out "$OUT" $DRY "${@:2}"; }
export -f step

summary_reserve=25  # seconds kept for the summary, whatever the phases before it take
left() { echo $((start + total - $(date +%s))); }

# phase NAME CAP COMMAND: runs COMMAND (a bash string; $BUDGET holds the seconds the phase may
# use, less a margin for writing its results) under `timeout`, and records the outcome.
phase() {
  local name=$1 cap=$2 command=$3
  local limit=$(($(left) - summary_reserve))
  [ "$cap" -lt "$limit" ] && limit=$cap
  if [ "$limit" -lt 15 ]; then
    printf '%s\tskipped\t0\t%s\tno time left\n' "$name" "$limit" >>"$out/phases.tsv"
    echo "=== $name: skipped (no time left) ==="
    return
  fi
  echo "=== $name (limit ${limit} s, $(left) s left) ==="
  local t0 rc status
  t0=$(date +%s)
  BUDGET=$((limit - 10)) timeout -k 10 "$limit" bash -c "$command"
  rc=$?
  case $rc in
    0) status=ok ;;
    4) status=partial ;;  # a benchmark step's budget ran out before its last row
    124 | 137) status=timeout ;;
    *) status="failed($rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\t\n' "$name" "$status" "$(($(date +%s) - t0))" "$limit" >>"$out/phases.tsv"
  echo "=== $name: $status in $(($(date +%s) - t0)) s ==="
}

# The CUDA tests skip (saying so) without a GPU: a dry run proves the command lines still work.
pytest_gpu='TRITON_INTERPRET=0 "$PYTHON" -m pytest -m cuda -n "$JOBS" --maxfail=25 --timeout=120 -q -rfE -p no:cacheprovider'
[ -n "$dry" ] && pytest_gpu=${pytest_gpu/TRITON_INTERPRET=0/TRITON_INTERPRET=1}

phase env 60 'step env'
phase build 240 '
  if step build-status; then exit 0; fi
  if [ -n "$DRY" ]; then
    export STYLEGAN_FAST_NO_CUDA=1
  else
    export TORCH_CUDA_ARCH_LIST=$(step arch)
  fi
  echo "+ pip install --no-build-isolation --no-deps -e . (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-none}, MAX_JOBS=$JOBS)"
  t0=$(date +%s)
  MAX_JOBS=$JOBS "$PYTHON" -m pip install -q --no-build-isolation --no-deps -e . || exit 1
  echo "built _C in $(($(date +%s) - t0)) s"
  step build-status'
phase tests-cuda 80 "$pytest_gpu tests/ops/test_cuda_kernels.py"
phase tests-triton 100 "$pytest_gpu tests/ops/test_bias_act.py tests/ops/test_noise_injection.py tests/ops/test_upfirdn2d.py tests/ops/test_adain.py tests/ops/test_layer_epilogue.py"
phase sanitize 60 '
  if [ -z "$DRY" ] && command -v compute-sanitizer >/dev/null; then
    # One cudaMalloc per tensor: an access past a tensor is outside its allocation, not
    # inside the caching allocator'"'"'s larger block, so memcheck sees it.
    export PYTORCH_NO_CUDA_MEMORY_CACHING=1
    compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 20 \
      "$PYTHON" -m stylegan_fast.bench.gpu_check sanitize --out "$OUT" || exit 1
    compute-sanitizer --tool racecheck --error-exitcode 99 --print-limit 20 \
      "$PYTHON" -m stylegan_fast.bench.gpu_check sanitize --race --out "$OUT" || exit 1
  else
    echo "compute-sanitizer not used (${DRY:-not found}): the same cases without it"
    step sanitize
  fi'
phase bench-ops 110 'step ops --providers cuda,triton,ref --budget "$BUDGET"'
phase bench-e2e 90 'step e2e --budget "$BUDGET"'
phase tests-models 45 "$pytest_gpu tests/models/test_cuda.py tests/train/test_loop.py tests/metrics/test_evaluate.py"
phase bench-compile 150 'step ops --providers compile --budget "$BUDGET"'

echo "=== summary ($(left) s left) ==="
timeout -k 5 "$summary_reserve" bash -c 'step summary'
failed=$(awk -F'\t' '$2 !~ /^(ok|partial)$/ {print $1}' "$out/phases.tsv" | tr '\n' ' ')
echo "gpu_check finished in $(($(date +%s) - start)) s; phases not ok: ${failed:-none}"
[ -z "$failed" ]
