"""The plan and merge math of the CUDA kernels, checked on CPU: csrc/plane_stats.h (the plane
normalisation engine of layer_epilogue and adain, csrc/plane_norm_cuda.cuh: chunked statistics,
their fixed-order finalize, the chunk / tile / slot decomposition) and csrc/columns_plan.h (the
channels_last element-wise kernels of bias_act and noise_injection: rows per thread, grid, loads
in flight) are plain C++ that the .cu files include; this test compiles those very headers with
the host compiler into a small driver (tests/ops/cuda_plans_check.cpp, ~1 s) and checks what it
prints:

- the chunked statistics (per-thread tile merges, per-chunk thread merges, the finalize over
  chunks) against a float64 two-pass mean and variance of the same values, for awkward
  chunkings (last chunk short, one chunk, 64+ chunks, NCHW vectors) and |mean| >> std;
- the plans at StyleGAN's shapes (N = 32): every value of a plane covered exactly once, chunk
  sizes, partials per plane, grid and block limits, shared memory;
- the element-wise plans: every row covered once in order, noise indices, and >= 32 KB of loads
  in flight per SM (H100: 132 SMs).

Plus the structure the plans assume in the CUDA sources (the apply kernels read finalized
values, the launchers and kernels use these functions). No GPU and no extension build needed:
the headers' only dependency is c10's header-only macros (csrc/host_device.h), found in torch's
include directory.
"""

import array
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch.utils.cpp_extension import include_paths

from stylegan_fast import testing

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
DRIVER = Path(__file__).with_name("cuda_plans_check.cpp")

SM_COUNT = 132  # H100 SXM
# StyleGAN2 synthesis layers at batch 32: (channels, resolution).
STYLEGAN_SHAPES = [(512, 8), (512, 32), (512, 64), (256, 128), (128, 256), (64, 512), (32, 1024)]
MAX_CHUNKS = 256  # plane_stats.h's kMaxChunks
MIN_CHUNK_PIXELS = 1024  # plane_stats.h's kMinChunkPixels
LOADS_IN_FLIGHT = 32 * 1024  # columns_plan.h's kLoadsInFlightPerSm
MAX_GRID_X, MAX_GRID_Y = 2**31 - 1, 65535
DEFAULT_SMEM = 48 * 1024  # dynamic shared memory without an opt-in


def _compiler():
    for candidate in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    cxx = _compiler()
    if cxx is None:
        pytest.skip("no C++ compiler (g++, c++, clang++ or $CXX) to build the plan checks")
    binary = tmp_path_factory.mktemp("cuda_plans") / "cuda_plans_check"
    # torch's include directory for c10/macros/Macros.h (C10_HOST_DEVICE): header-only, so the
    # driver builds with nothing else of torch, as a system directory so that its headers'
    # warnings are not ours.
    torch_include = f"-isystem{include_paths()[0]}"
    build = subprocess.run(
        [cxx, "-std=c++20", "-O2", "-Wall", "-Wextra", torch_include, f"-I{CSRC}", str(DRIVER)]
        + ["-o", str(binary)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"building the plan checks failed:\n{build.stderr}"
    assert "warning" not in build.stderr, build.stderr
    return binary


def query(driver, lines):
    """Runs the driver on `lines` (one query each); returns one dict per query."""
    out = subprocess.run(
        [str(driver)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    answers = [
        dict(item.split("=", 1) for item in line.split()) for line in out.stdout.splitlines()
    ]
    assert len(answers) == len(lines), out.stdout
    return answers


def as_int(answer, *keys):
    return [int(answer[k]) for k in keys]


# --- chunked statistics: the merges against float64 -----------------------------------------


def two_pass(values):
    """Exactly rounded float64 mean and sum of squared deviations (math.fsum)."""
    mean = math.fsum(values) / len(values)
    return mean, math.fsum((v - mean) ** 2 for v in values)


def plane_values(n, offset, std, acc, seed):
    g = torch.Generator().manual_seed(seed)
    values = offset + std * torch.randn(n, generator=g, dtype=torch.float64)
    if acc == "f32":
        values = values.float().double()  # what a float plane holds
    return values.tolist()


def merge(driver, tmp_path, values, lanes, vector, tiles_per_chunk, acc):
    path = tmp_path / "plane.bin"
    array.array("d", values).tofile(path.open("wb"))
    [answer] = query(
        driver, [f"merge {path} {len(values)} {lanes} {vector} {tiles_per_chunk} {acc}"]
    )
    return answer


# (HW, lanes, V per access for float (halved for double), tiles per chunk, what it exercises)
CHUNKINGS = [
    (1000, 8, 1, 3, "last chunk short (channels_last tiles of 128 / 64 pixels)"),
    (100, 8, 1, 8, "one chunk, partial tile"),
    (70000, 8, 1, 1, "64+ chunks (547 float, 1094 double)"),
    (3 * 4096 + 36, 256, 4, 2, "NCHW 16-byte vectors, short last chunk"),
    (1, 8, 1, 8, "a single value"),
    (17, 8, 1, 1, "fewer values than lanes"),
    (1 << 20, 8, 1, 32, "1024x1024 channels_last: 256 chunks of 4096 pixels"),
]


@pytest.mark.parametrize("acc", ["f32", "f64"])
@pytest.mark.parametrize(
    "offset", [0.0, 1e4, -3e6], ids=["centred", "mean_1e4_std", "mean_-3e6_std"]
)
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=[c[4] for c in CHUNKINGS])
def test_chunk_merge_matches_float64_two_pass(driver, tmp_path, chunking, offset, acc):
    hw, lanes, vector, tiles_per_chunk, _ = chunking
    if acc == "f64":
        vector = max(1, vector // 2)  # 16-byte vectors hold 2 doubles
    values = plane_values(hw, offset, 1.0, acc, seed=hw + int(abs(offset)))
    answer = merge(driver, tmp_path, values, lanes, vector, tiles_per_chunk, acc)
    assert answer["covered"] == "1" and answer["in_bounds"] == "1", answer
    mean, m2 = float.fromhex(answer["mean"]), float.fromhex(answer["m2"])
    ref_mean, ref_m2 = two_pass(values)
    # float: a few ulps of the data (|mean| + std), and of M2 whatever |mean| / std is (the
    # kernels merge the moments of u - u[0]; unshifted, |mean| = 3e6 std cost 1-5% of M2).
    eps = 1e-6 if acc == "f32" else 1e-13
    scale = abs(ref_mean) + math.sqrt(ref_m2 / hw)
    assert abs(mean - ref_mean) <= eps * scale, (mean, ref_mean)
    assert abs(m2 - ref_m2) <= eps * ref_m2 + 1e-30, (m2, ref_m2)


def test_constant_plane_has_zero_variance(driver, tmp_path):
    # Every value equal to the shift: M2 exactly 0 (rstd = 1 / sqrt(eps)), mean exact.
    answer = merge(driver, tmp_path, [12345.678] * 5000, 8, 1, 1, "f32")
    assert float.fromhex(answer["m2"]) == 0.0
    assert float.fromhex(answer["mean"]) == float(torch.tensor(12345.678).float())


def test_chunk_merge_is_deterministic(driver, tmp_path):
    values = plane_values(70000, 3.0, 2.0, "f32", seed=7)
    runs = [merge(driver, tmp_path, values, 8, 1, 1, "f32") for _ in range(3)]
    assert all(r == runs[0] for r in runs), runs  # bit for bit: fixed order, no atomics


def test_backward_finalize_sums_in_fixed_order(driver, tmp_path):
    for k in (1, 15, 16, 17, 256):
        g = torch.Generator().manual_seed(k)
        pairs = (torch.randn(2 * k, generator=g, dtype=torch.float64) * 100).float().double()
        path = tmp_path / "pairs.bin"
        array.array("d", pairs.tolist()).tofile(path.open("wb"))
        answers = query(driver, [f"pairs {path} {k}"] * 2)
        assert answers[0] == answers[1]
        first, second = float.fromhex(answers[0]["first"]), float.fromhex(answers[0]["second"])
        ref_first, ref_second = math.fsum(pairs[0::2].tolist()), math.fsum(pairs[1::2].tolist())
        bound = 1e-6 * float(pairs.abs().sum())
        assert abs(first - ref_first) <= bound and abs(second - ref_second) <= bound


# --- plane plans ---------------------------------------------------------------------------


def plan_queries(n, shapes, scalar_sizes=(2, 4), sm_count=SM_COUNT):
    cases = []
    for c, hw in shapes:
        for channels_last in (0, 1):
            for scalar_size in scalar_sizes:
                for backward in (0, 1):
                    cases.append((n, c, hw, channels_last, backward, scalar_size))
    lines = [f"plan {n} {c} {hw} {cl} {bw} {s} {sm_count}" for n, c, hw, cl, bw, s in cases]
    return cases, lines


def check_plan(case, answer):
    n, c, hw, channels_last, backward, scalar_size = case
    chunked, threads, lanes, group = as_int(answer, "chunked", "threads", "lanes", "group")
    tile, chunk, chunks, blocks = as_int(answer, "tile", "chunk", "chunks", "blocks")
    values, max_threads = as_int(answer, "values", "max_threads")
    # Every value of a plane exactly once, inside its tile, NCHW vectors aligned.
    assert answer["covered"] == "1" and answer["in_bounds"] == "1", answer
    assert answer["aligned"] == "1", answer
    assert int(answer["max_slots"]) <= values  # a thread's registers hold one tile
    # Launch limits.
    assert threads % 32 == 0 and threads <= 1024 and threads == lanes * group
    assert blocks <= MAX_GRID_X and chunks <= MAX_GRID_Y
    assert int(answer["finalize_blocks"]) <= MAX_GRID_X
    assert int(answer["smem"]) <= DEFAULT_SMEM
    if not chunked:
        # One pass: the group's tile is the plane, within the kernel's __launch_bounds__.
        assert threads <= max_threads and chunks == 1 and tile >= hw and chunk == hw
        return
    assert threads == 256 and int(answer["finalize_blocks"]) == -(-(n * c) // 256)
    assert chunk % tile == 0 and chunks == -(-hw // chunk)
    # Bounded partials per plane: the finalize merges at most 256 per plane, once.
    assert chunks <= MAX_CHUNKS
    if channels_last:
        # Thousands of pixels per chunk, not 128.
        assert chunk >= min(hw, MIN_CHUNK_PIXELS), answer


def test_plans_at_stylegan_shapes(driver):
    cases, lines = plan_queries(32, [(c, h * h) for c, h in STYLEGAN_SHAPES])
    answers = query(driver, lines)
    for case, answer in zip(cases, answers):
        check_plan(case, answer)
    by_case = dict(zip(cases, answers))
    # One pass wherever a block can hold the plane (forward NCHW up to 128x128, backward up to
    # 64x64; channels_last forward up to 32x32), chunked above.
    for (n, c, hw, cl, bw, s), answer in by_case.items():
        side = int(math.isqrt(hw))
        one_pass = side <= (32 if cl else 64 if bw else 128)
        if cl and bw:
            one_pass = side <= (32 if s == 4 else 16)
        assert answer["chunked"] == ("0" if one_pass else "1"), ((n, c, hw, cl, bw, s), answer)
    # 1024x1024: partials per plane 64 (NCHW, chunks of 16K elements) and 256 (channels_last,
    # chunks of 4096 pixels); they were 256 and 8192, merged by every thread of every block.
    assert by_case[(32, 32, 1 << 20, 0, 0, 2)]["chunks"] == "64"
    assert by_case[(32, 32, 1 << 20, 1, 0, 2)]["chunks"] == "256"
    assert by_case[(32, 32, 1 << 20, 1, 0, 2)]["chunk"] == "4096"


def test_plans_at_edge_shapes(driver):
    shapes = [
        (3, 1),
        (5, 49),
        (7, 3 * 5),
        (1, 16385),
        (2, 2048 * 4096),
        (1000, 8193),
        (9, 130 * 130),
    ]
    cases, lines = [], []
    for n in (1, 3):
        c_, l_ = plan_queries(n, shapes, scalar_sizes=(2, 4, 8))
        cases += c_
        lines += l_
    for case, answer in zip(cases, query(driver, lines)):
        check_plan(case, answer)


def test_nchw_chunks_shrink_when_planes_are_few(driver):
    # N * C = 4 planes of 256x256: 16 tiles each; 4 tiles a chunk would give 16 blocks for 132
    # SMs, so chunks take 1 tile (64 blocks); at N * C = 4096 they take 4.
    few, many = query(driver, ["plan 1 4 65536 0 0 2 132", "plan 32 128 65536 0 0 2 132"])
    assert few["tiles_per_chunk"] == "1" and few["chunks"] == "16"
    assert many["tiles_per_chunk"] == "4" and many["chunks"] == "4"


# --- channels_last element-wise plans ------------------------------------------------------


def columns_query(rows, c, scalar_size, backward, kernel, per_sample, hw, sm_count=SM_COUNT):
    return f"columns {rows} {c} {scalar_size} {backward} {kernel} {sm_count} {per_sample} {hw}"


def check_columns(rows, c, scalar_size, tensors, answer):
    assert answer["covered"] == "1", answer  # every row of every column tile exactly once
    assert answer["increasing"] == "1", answer  # a thread's rows in order: fixed sums
    assert answer["noise_ok"] == "1", answer
    rows_per_thread, row_lanes = as_int(answer, "rows_per_thread", "row_lanes")
    chunk_rows, chunks, col_tiles = as_int(answer, "chunk_rows", "chunks", "col_tiles")
    assert chunks <= MAX_GRID_Y and col_tiles <= MAX_GRID_X
    # The first wave's loads: >= 32 KB per SM, short only by the channels past C in the last
    # column tile (C = 511: 511 / 512 of it), or the whole tensor when it is smaller.
    in_flight = float(answer["in_flight"])
    padded = col_tiles * int(answer["col_lanes"]) * int(answer["V"])
    whole_tensor_in_one_step = chunk_rows <= row_lanes * rows_per_thread
    tensor_per_sm = rows * c * scalar_size * tensors / SM_COUNT
    assert in_flight >= LOADS_IN_FLIGHT * c / padded or (
        whole_tensor_in_one_step and in_flight >= 0.9 * tensor_per_sm
    ), (rows, c, scalar_size, tensors, answer)


@pytest.mark.parametrize("scalar_size", [2, 4], ids=["fp16", "fp32"])
@pytest.mark.parametrize("aligned", [True, False], ids=["vector", "scalar"])
def test_columns_plans_at_stylegan_shapes(driver, scalar_size, aligned):
    cases, lines = [], []
    for c, h in STYLEGAN_SHAPES:
        channels = c if aligned else c - 1  # C % V != 0: V scalar accesses a thread
        rows = 32 * h * h
        for kernel, backward, tensors in (("bias_act", 0, 1), ("bias_act", 1, 2), ("noise", 0, 1)):
            per_sample = int(h % 64 != 0)  # both noise layouts over the shapes
            cases.append((rows, channels, scalar_size, tensors, backward))
            lines.append(
                columns_query(rows, channels, scalar_size, backward, kernel, per_sample, h * h)
            )
    for (rows, channels, s, tensors, backward), answer in zip(cases, query(driver, lines)):
        check_columns(rows, channels, s, tensors, answer)
        # 16 bytes of channels a thread, 64 bytes in flight: 4 rows forward, 2 backward.
        assert answer["rows_per_thread"] == ("2" if backward else "4")
        assert int(answer["V"]) * s == 16


def test_columns_plans_at_edge_shapes(driver):
    cases = [
        (32 * 1024 * 1024, 3, 2, 0, "bias_act", 1, 1024 * 1024),  # toRGB's bias: 3 channels
        (1, 1, 4, 1, "bias_act", 1, 1),
        (7, 5, 2, 0, "noise", 0, 7),
        (100, 33, 8, 1, "bias_act", 1, 100),
        (10**7, 512, 2, 0, "noise", 0, 4096),
    ]
    lines = [columns_query(*case) for case in cases]
    # An SM count that asks for more chunks than gridDim.y allows: capped at 65535 (whole
    # steps of 32 rows per chunk: 62500 chunks of 160 rows).
    lines.append(columns_query(10**7, 512, 2, 0, "bias_act", 1, 4096, sm_count=10**6))
    answers = query(driver, lines)
    for answer in answers:
        assert answer["covered"] == "1" and answer["increasing"] == "1", answer
        assert answer["noise_ok"] == "1", answer
        assert int(answer["chunks"]) <= MAX_GRID_Y
    assert int(answers[-1]["chunks"]) > MAX_GRID_Y // 2


# --- what the plans assume of the kernels --------------------------------------------------


def kernel_body(source, name):
    """The text of __global__ function `name`'s body (brace-matched)."""
    start = source.index("{", re.search(rf"\b{name}\(Params p\)", source).end())
    depth = 0
    for end in range(start, len(source)):
        depth += {"{": 1, "}": -1}.get(source[end], 0)
        if depth == 0:
            return source[start : end + 1]
    raise AssertionError(f"no end to {name}")


def test_apply_kernels_read_finalized_values():
    source = (CSRC / "plane_norm_cuda.cuh").read_text()
    for name in ("forward_apply_kernel", "backward_apply_kernel"):
        body = kernel_body(source, name)
        # No merging of chunk partials per thread: they read the finalize's mean / rstd or
        # coefficients, a constant number of values whatever the chunk count.
        assert "partials" not in body and "chunks" not in body, name
    assert "plans::merge_chunk_moments" in kernel_body(source, "forward_finalize_kernel")
    assert "plans::sum_chunk_pairs" in kernel_body(source, "backward_finalize_kernel")
    assert source.count("plans::plan_plane_stats(") == 2  # forward and backward launchers


def test_element_wise_kernels_use_the_checked_sizing():
    for name, rows_fn in (
        ("bias_act_cuda.cu", "bias_act_rows_per_thread"),
        ("noise_injection_cuda.cu", "noise_rows_per_thread"),
    ):
        source = (CSRC / name).read_text()
        # The kernel's R and the launcher's plan come from the same function.
        assert source.count(f"plans::{rows_fn}(") == 2, name
        assert "plans::plan_columns(" in source and "plans::rows_in_step(" in source, name
        assert "__launch_bounds__(plans::kColumnsThreads, plans::kColumnsBlocksPerSm)" in source


OPS = ["bias_act", "noise_injection", "upfirdn2d", "layer_epilogue", "adain"]


@pytest.mark.parametrize("op", OPS)
def test_each_op_shares_its_header_and_registers_only_itself(op):
    # The op template: csrc/<op>.h holds the element math and checks that both backends run, so
    # the CPU tests cover what the GPU computes; each backend file registers its own op only.
    for name, key in ((f"{op}.cpp", "CPU"), (f"{op}_cuda.cu", "CUDA")):
        source = (CSRC / name).read_text()
        assert f'#include "{op}.h"' in source, name
        registered = testing.csrc_registrations(source, key)
        assert registered and registered <= {f"{op}_fwd", f"{op}_bwd"}, (name, registered)
