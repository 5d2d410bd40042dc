// Launch sizing of the CUDA channels_last element-wise kernels (bias_act's columns_kernel,
// noise_injection's rows_kernel), in plain C++ so that tests/ops/test_cuda_plans.py checks
// with g++ what the launchers compute.
//
// Those kernels see a [rows, channels] matrix (rows = N * H * W pixels, channels contiguous):
// a block is col_lanes x row_lanes threads over a tile of col_lanes * V channels and a chunk
// of rows; a thread takes V adjacent channels (16 bytes) of a row, and loads rows_per_thread
// rows (row_lanes apart) before it uses any, so that those loads are in flight together.
//
// A memory-bound kernel needs about latency x bandwidth in flight: H100, ~0.6 us x ~3.35 TB/s
// / 132 SMs ~ 15 KB per SM; we ask for 32 KB (2x, for the latency under load). Before, with
// one row per thread and ~4 blocks of 256 threads per SM, that was 16 KB (16-byte vectors,
// forward) and 2-4 KB on the scalar path (C % V != 0: one channel a thread). Now the scalar
// path also takes V channels a thread (V scalar accesses off one address), so every path has
// 16 bytes per row per tensor.
//
// Two blocks of 256 threads per SM, up to 128 registers a thread, with 4 rows forward and 2
// backward: 32 KB either way (512 threads x 64 B). ptxas keeps one 64-bit address per load in
// flight (~3 registers per scalar load); with one channel a thread, 32 KB of fp16 took 16
// loads a thread at 64 registers or 32 at 128 and spilled 4-180 B in both.
#pragma once

#include <cstdint>

#include "host_device.h"

namespace stylegan_fast {
namespace plans {

constexpr int kColumnsThreads = 256;
// Blocks per SM the grid provides and the kernels' __launch_bounds__ guarantee (<= 128
// registers a thread at 256 threads: 512 resident threads).
constexpr int kColumnsBlocksPerSm = 2;
constexpr int64_t kLoadsInFlightPerSm = 32 * 1024;
constexpr int kMaxRowsPerThread = 16;

// Bytes one thread loads per row: V channels of each tensor it reads (x forward; dy and x
// backward).
C10_HOST_DEVICE constexpr int64_t columns_bytes_per_row(int V, int64_t scalar_size,
                                                        int tensors_read) {
  return int64_t(V) * scalar_size * tensors_read;
}

// Rows per thread per step, a power of two: the fewest that put kLoadsInFlightPerSm in flight
// with kColumnsBlocksPerSm blocks resident (64 B a thread): with 16-byte rows, 4 forward and 2
// backward (two tensors).
C10_HOST_DEVICE constexpr int rows_per_thread(int64_t bytes_per_row) {
  int rows = 1;
  while (rows < kMaxRowsPerThread &&
         int64_t(kColumnsBlocksPerSm) * kColumnsThreads * rows * bytes_per_row <
             kLoadsInFlightPerSm) {
    rows *= 2;
  }
  return rows;
}

// bias_act's columns_kernel reads x (forward) or dy and x (backward) per row.
C10_HOST_DEVICE constexpr int bias_act_rows_per_thread(int V, int64_t scalar_size,
                                                       bool backward) {
  return rows_per_thread(columns_bytes_per_row(V, scalar_size, backward ? 2 : 1));
}

// noise_injection's rows_kernel reads x (forward) or dy (backward) per row, and each row's
// noise value (1/V of that, mostly L1/L2 hits: a row's column lanes share it), not counted.
C10_HOST_DEVICE constexpr int noise_rows_per_thread(int V, int64_t scalar_size) {
  return rows_per_thread(columns_bytes_per_row(V, scalar_size, 1));
}

struct ColumnsPlan {
  int col_lanes = 1, row_lanes = 1, rows_per_thread = 1;
  int64_t col_tiles = 0;   // gridDim.x
  int64_t chunk_rows = 0;  // rows per block
  int64_t chunks = 0;      // gridDim.y
};

// rows >= 1, channels >= 1; V channels a thread (16 bytes); rows_per_thread: the kernel's
// (bias_act_ / noise_rows_per_thread).
inline ColumnsPlan plan_columns(int64_t rows, int64_t channels, int V, int rows_per_thread,
                                int sm_count) {
  ColumnsPlan m;
  m.col_lanes = static_cast<int>(min_of<int64_t>(32, next_pow2(ceil_div(channels, V))));
  m.row_lanes = kColumnsThreads / m.col_lanes;
  m.rows_per_thread = rows_per_thread;
  m.col_tiles = ceil_div(channels, int64_t(m.col_lanes) * V);
  // Chunks of whole steps (row_lanes * rows_per_thread rows), at least as many as fill every
  // SM with kColumnsBlocksPerSm blocks when the rows allow (so that the first wave is full:
  // rounding the other way left [32, 512, 8, 8] fp32 at 256 of 264 blocks), at most 65535.
  const int64_t step_rows = int64_t(m.row_lanes) * m.rows_per_thread;
  const int64_t steps = ceil_div(rows, step_rows);
  const int64_t wanted = ceil_div(int64_t(sm_count) * kColumnsBlocksPerSm, m.col_tiles);
  const int64_t steps_per_chunk =
      max_of<int64_t>(max_of<int64_t>(1, steps / wanted), ceil_div(steps, kMaxGridY));
  m.chunk_rows = steps_per_chunk * step_rows;
  m.chunks = ceil_div(rows, m.chunk_rows);
  return m;
}

// A thread's rows: in the chunk [chunk_begin, chunk_end), row lane `row_lane` takes steps that
// start at first = chunk_begin + row_lane, + row_lanes * rows_per_thread, ... (while first <
// chunk_end), and in each the rows first + u * row_lanes for u < rows_in_step(first, ...): a
// step covers row_lanes * rows_per_thread consecutive rows, and each thread's rows come in
// increasing order (the order its column sums add them in).
//
// How many of the step's rows_per_thread rows are below chunk_end (first < chunk_end): one
// 32-bit bound per step instead of a 64-bit compare per row.
C10_HOST_DEVICE inline int rows_in_step(int64_t first, int64_t chunk_end, int row_lanes,
                                        int rows_per_thread) {
  return static_cast<int>(
      min_of<int64_t>(rows_per_thread, ceil_div(chunk_end - first, row_lanes)));
}

// noise_injection's rows: row r = n * HW + i reads noise[r] (noise per sample, [N, 1, H, W])
// or noise[r % HW] (one plane for the batch). The rows of a step are row_lanes apart, so the
// index steps by row_lanes modulo `wrap` (HW, or "never" for per-sample noise) with one
// subtraction instead of a 64-bit division per row.
struct NoiseRows {
  int64_t wrap;  // HW, or INT64_MAX when the index is the row itself
  int step;      // row_lanes % wrap (< row_lanes <= 256)
};

C10_HOST_DEVICE inline NoiseRows noise_rows(bool per_sample, int64_t HW, int row_lanes) {
  const int64_t wrap = per_sample ? INT64_MAX : HW;
  return {wrap, static_cast<int>(int64_t(row_lanes) % wrap)};
}

// The noise index of row r (the first of a step: one division per step).
C10_HOST_DEVICE inline int64_t noise_index(const NoiseRows& n, int64_t r) { return r % n.wrap; }

// The noise index of the row row_lanes after the one at index i (< wrap).
C10_HOST_DEVICE inline int64_t next_noise_index(const NoiseRows& n, int64_t i) {
  i += n.step;  // < 2 * wrap: i < wrap and step < wrap (INT64_MAX: i + step is a row index)
  return i >= n.wrap ? i - n.wrap : i;
}

// Bytes of loads in flight per SM in the first step: the grid's first wave (at most
// kColumnsBlocksPerSm blocks per SM), each thread with its first step's rows, spread evenly
// over the SMs; bytes_per_value = scalar size x tensors read. Channels past C load nothing.
inline double loads_in_flight_per_sm(const ColumnsPlan& m, int64_t channels,
                                     int64_t bytes_per_value, int sm_count) {
  const int64_t blocks = m.col_tiles * m.chunks;
  const int64_t resident = min_of<int64_t>(blocks, int64_t(sm_count) * kColumnsBlocksPerSm);
  const int64_t step_rows =
      min_of<int64_t>(m.chunk_rows, int64_t(m.row_lanes) * m.rows_per_thread);
  const double tile_channels = double(channels) / double(m.col_tiles);  // on average
  return double(resident) * double(step_rows) * tile_channels * double(bytes_per_value) /
         double(sm_count);
}

}  // namespace plans
}  // namespace stylegan_fast
