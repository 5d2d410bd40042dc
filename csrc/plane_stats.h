// The plan and the statistics math of the CUDA plane-normalisation kernels
// (plane_norm_cuda.cuh: the engine of layer_epilogue and adain), in plain C++ so that
// tests/ops/test_cuda_plans.py compiles these very functions with g++ and checks them:
// that the merges match a float64 two-pass mean/variance, that the chunk / tile / slot
// decomposition covers every value of a plane exactly once, and that the plans at StyleGAN's
// shapes stay within the bounds below and CUDA's launch limits.
//
// A plane (n, c) of HW values is cut into `chunks` chunks of `chunk` values (elements NCHW,
// pixels channels_last), one block (or, channels_last, one block per 32 channels) per chunk;
// a block walks its chunk one tile at a time, a tile being values_per_thread values for each
// of its `lanes` threads. A plane that fits one tile is done in one pass (statistics and
// output from registers). Larger planes take three kernels: per-chunk statistics (partials),
// a finalize that merges each plane's chunks once, in a fixed order, and an apply that reads
// the merged values and writes the output.
#pragma once

#include <initializer_list>

#include "host_device.h"

namespace stylegan_fast {
namespace plans {

constexpr int kChunkThreads = 256;  // threads per block of the chunked kernels
constexpr int kChunkChannels = 32;  // channels_last chunked blocks: channels per block
// The chunked grids offer at least this many 256-thread blocks per SM when the planes allow:
// two waves of the 2-3 blocks an SM holds (their registers: 72-128 a thread on sm_90), each
// thread with 16 values of x (and of dy, backward) in flight per tile: 16-48 KB per SM
// forward, 32-96 KB backward, around what H100's ~3.35 TB/s x ~0.6 us / 132 SMs (~15 KB)
// needs.
constexpr int kChunkBlocksPerSm = 4;
// NCHW chunks take up to 4 tiles (16K elements): a block's fixed cost (two group sums, 4
// barriers, and its partial) spread over 4x the values, while N * C planes x chunks still
// make >= 4 blocks per SM at every StyleGAN shape with N >= 4 (fewer tiles per chunk when
// the planes alone would leave SMs idle).
constexpr int64_t kNchwTilesPerChunk = 4;
// channels_last chunks: at least 1024 pixels (8 tiles of 128 in float) x 32 channels, so each
// block's group sums (5 barriers each) are spent on 32K values, and a 1024x1024 plane has 256
// chunks of 4096 pixels (kMaxChunks) instead of 8192 of 128.
constexpr int64_t kMinChunkPixels = 1024;
// At most this many chunks (partials) per plane: the finalize merges at most 256 partials per
// plane, and the chunk count stays far below gridDim.y's 65535.
constexpr int64_t kMaxChunks = 256;
constexpr int kFinalizeThreads = 256;  // one thread per plane
constexpr int kSumBlock = 16;          // fixed-order sums add blocks of 16 terms (see below)

// Values a thread holds per tile (elements NCHW, pixels NHWC): 64 bytes of accumulators, 16
// floats or 8 doubles, so that a double kernel needs no more registers than a float one.
C10_HOST_DEVICE constexpr int values_per_thread(int64_t acc_size) {
  return static_cast<int>(64 / acc_size);
}

// One-pass block sizes, at most (the kernels' __launch_bounds__): a plane of up to
// threads * values_per_thread values in registers, 1024 * 16 = 16K (128x128) forward and half
// that backward, which holds dy and v (512 threads already need 70-100 registers on sm_90).
// channels_last forward with 4- and 8-byte scalars stops at 512: their 32-byte sector is 8 / 4
// channels, so 512 threads still hold a 32x32 plane (every StyleGAN shape keeps its plan), and
// at 1024 threads (<= 64 registers) ptxas spilled 4-20 bytes in fp32.
C10_HOST_DEVICE constexpr int max_one_pass_threads(bool backward, bool channels_last,
                                                   int64_t scalar_size) {
  return backward || (channels_last && scalar_size >= 4) ? 512 : 1024;
}

struct PlaneStatsPlan {
  bool chunked = false;  // three kernels (partials, finalize, apply) instead of one
  int threads = 0;       // per block
  int lanes = 1;         // threads per plane (NCHW) or pixel lanes (NHWC), a power of two
  int group = 1;         // NCHW: planes per block; NHWC: channels per block
  int64_t tile = 0;      // values one step of a block covers per plane: lanes * values
  int64_t tiles_per_chunk = 1;
  int64_t chunk = 0, chunks = 1;  // values per chunk (the last may be short), chunks per plane
  int64_t blocks = 0;             // gridDim.x (gridDim.y = chunks)
  int64_t smem = 0;               // dynamic shared memory of the kernels with group sums
  int64_t finalize_blocks = 0;    // chunked: blocks of kFinalizeThreads, one thread per plane
};

// The mapping for N * C planes of HW values (HW >= 1): one pass when a group of at most
// max_one_pass_threads threads holds a plane (or, NHWC, a block of channels of it) in
// registers, values_per_thread values each; otherwise chunks of tiles.
inline PlaneStatsPlan plan_plane_stats(int64_t N, int64_t C, int64_t HW, bool channels_last,
                                       bool backward, int64_t scalar_size, int64_t acc_size,
                                       int sm_count) {
  const int values = values_per_thread(acc_size);
  const int max_threads = max_one_pass_threads(backward, channels_last, scalar_size);
  PlaneStatsPlan m;
  if (channels_last) {
    // 32 channels (64-128 contiguous bytes per pixel) when the plane fits, else one 32-byte
    // sector of channels per pixel (more pixel lanes per block), else chunks.
    const int sector = static_cast<int>(32 / scalar_size);
    int group = 0;
    for (int candidate : {32, sector}) {
      if (HW <= int64_t(max_threads / candidate) * values) {
        group = candidate;
        break;
      }
    }
    if (group == 0) {
      m.chunked = true;
      m.group = kChunkChannels;
      m.lanes = kChunkThreads / kChunkChannels;
    } else {
      m.group = group;
      m.lanes = static_cast<int>(max_of<int64_t>(1, next_pow2(ceil_div(HW, values))));
    }
    m.threads = m.group * m.lanes;
    m.blocks = N * ceil_div(C, m.group);
    m.smem = 2 * int64_t(m.threads) * acc_size;  // strided group sums: 2 values a thread
  } else {
    if (HW <= int64_t(max_threads) * values) {
      m.lanes = static_cast<int>(max_of<int64_t>(1, next_pow2(ceil_div(HW, values))));
    } else {
      m.chunked = true;
      m.lanes = kChunkThreads;
    }
    m.threads = static_cast<int>(max_of<int64_t>(m.lanes, 256));
    m.group = m.threads / m.lanes;
    m.blocks = ceil_div(N * C, m.group);
    m.smem = 2 * int64_t(m.threads / 32) * acc_size;  // contiguous group sums: 2 per warp
  }
  m.tile = int64_t(m.lanes) * values;
  if (!m.chunked) {
    m.chunk = HW;
    return m;
  }
  const int64_t tiles = ceil_div(HW, m.tile);
  int64_t per_chunk;
  if (channels_last) {
    per_chunk = kMinChunkPixels / m.tile;
  } else {
    // Fewer tiles per chunk (more chunks) only when the planes alone leave SMs idle.
    const int64_t target_blocks = int64_t(sm_count) * kChunkBlocksPerSm;
    per_chunk = clamp_to<int64_t>(tiles * m.blocks / max_of<int64_t>(target_blocks, 1), 1,
                                  kNchwTilesPerChunk);
  }
  per_chunk = min_of(max_of(per_chunk, ceil_div(tiles, kMaxChunks)), tiles);
  m.tiles_per_chunk = per_chunk;
  m.chunk = per_chunk * m.tile;
  m.chunks = ceil_div(HW, m.chunk);
  m.finalize_blocks = ceil_div(N * C, kFinalizeThreads);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Which values a thread touches. Everything is relative to the plane: element (NCHW) or pixel
// (NHWC) index in [0, HW).

struct Span {
  int64_t begin, end;
};

// Chunk k of a plane of HW values.
C10_HOST_DEVICE inline Span chunk_span(int64_t HW, int64_t chunk, int64_t k) {
  const int64_t begin = k * chunk;
  return {begin, min_of(HW, begin + chunk)};
}

C10_HOST_DEVICE inline int64_t chunk_count(int64_t HW, int64_t chunk, int64_t k) {
  const Span s = chunk_span(HW, chunk, k);
  return s.end - s.begin;
}

C10_HOST_DEVICE inline int64_t tiles_in(Span chunk, int64_t tile) {
  return ceil_div(chunk.end - chunk.begin, tile);
}

// Tile t of a chunk.
C10_HOST_DEVICE inline Span tile_span(Span chunk, int64_t tile, int64_t t) {
  const int64_t begin = chunk.begin + t * tile;
  return {begin, min_of(chunk.end, begin + tile)};
}

// Slot e (< values) of lane `lane` of `lanes` in a tile starting at `begin`: the lanes take
// consecutive accesses of V values (NCHW: 16-byte vectors; NHWC: V = 1, one pixel each).
C10_HOST_DEVICE inline int64_t slot_index(int64_t begin, int lane, int lanes, int V, int e) {
  return begin + (int64_t(e / V) * lanes + lane) * V + e % V;
}

// How many of a lane's `values` slots hold a value of the tile: slot indices grow with e, so
// these are exactly the slots e < count. V divides the tile's bounds (NCHW vectors need
// HW % V == 0; chunks and tiles are multiples of lanes * values), so an access is wholly
// inside or outside.
C10_HOST_DEVICE inline int slot_count(Span tile, int lane, int lanes, int V, int values) {
  const int64_t first = tile.begin + int64_t(lane) * V, step = int64_t(lanes) * V;
  const int64_t accesses = first < tile.end ? ceil_div(tile.end - first, step) : 0;
  return static_cast<int>(min_of<int64_t>(accesses, values / V)) * V;
}

// Where pass 1 leaves chunk k's two statistics of plane `plane`: chunk-major, so that the
// finalize's threads (one per plane) read consecutive addresses for each k.
C10_HOST_DEVICE inline int64_t partial_offset(int64_t k, int64_t plane, int64_t planes) {
  return (k * planes + plane) * 2;
}

// ---------------------------------------------------------------------------------------------
// Statistics. Moments = (count, mean, M2 = sum of squared deviations from the mean).

template <typename T>
struct Moments {
  T count, mean, m2;
};

// The moments of values[0, count), 1 <= count <= kN, by the corrected two-pass algorithm
// (mean m0, then sum(v - m0) and sum((v - m0)^2)): |mean| >> std does not cancel M2.
template <int kN, typename T>
C10_HOST_DEVICE inline Moments<T> moments_of(const T (&values)[kN], int count) {
  const T n = T(count);
  T sum = T(0);
  SGF_UNROLL
  for (int e = 0; e < kN; ++e) sum += e < count ? values[e] : T(0);
  const T m0 = sum / n;
  T d = T(0), d2 = T(0);
  SGF_UNROLL
  for (int e = 0; e < kN; ++e) {
    const T dev = e < count ? values[e] - m0 : T(0);
    d += dev;
    d2 += dev * dev;
  }
  return {n, m0 + d / n, d2 - d * d / n};
}

// a then b, by Chan et al.'s update; an empty side leaves the other as it is.
template <typename T>
C10_HOST_DEVICE inline Moments<T> chan_merge(const Moments<T>& a, const Moments<T>& b) {
  if (b.count == T(0)) return a;
  if (a.count == T(0)) return b;
  const T n = a.count + b.count;
  const T delta = b.mean - a.mean;
  return {n, a.mean + delta * (b.count / n), a.m2 + b.m2 + delta * delta * (a.count * b.count / n)};
}

// Merging many moments at once (the threads of a chunk, the chunks of a plane), with the
// merged mean known only after the first sum:
//   mean = sum_i n_i mean_i / n,   M2 = sum_i (M2_i + n_i (mean_i - mean)^2).
// Two sums of terms, each any fixed order; empty parts contribute exactly 0.
template <typename T>
C10_HOST_DEVICE inline T mean_term(const Moments<T>& m) {
  return m.count == T(0) ? T(0) : m.count * m.mean;
}
template <typename T>
C10_HOST_DEVICE inline T spread_term(const Moments<T>& m, T mean) {
  if (m.count == T(0)) return T(0);
  const T d = m.mean - mean;
  return m.m2 + m.count * d * d;
}

// The finalize of chunked statistics: plane `plane`'s chunks (partials at partial_offset:
// mean, M2) merged into the plane's mean and M2. Sums in a fixed order (blocks of kSumBlock
// chunks, then the block sums), so every run gives the same bits, and the rounding error
// grows with 16 + chunks / 16 terms rather than with the 256 chunks a plane may have.
template <typename T>
C10_HOST_DEVICE inline void merge_chunk_moments(const T* partials, int64_t plane, int64_t planes,
                                                int64_t HW, int64_t chunk, int64_t chunks,
                                                T& mean, T& m2) {
  T total = T(0);
  for (int64_t b = 0; b < chunks; b += kSumBlock) {
    T sum = T(0);
    for (int64_t k = b; k < min_of(chunks, b + kSumBlock); ++k) {
      const T* part = partials + partial_offset(k, plane, planes);
      sum += mean_term(Moments<T>{T(chunk_count(HW, chunk, k)), part[0], part[1]});
    }
    total += sum;
  }
  mean = total / T(HW);
  total = T(0);
  for (int64_t b = 0; b < chunks; b += kSumBlock) {
    T sum = T(0);
    for (int64_t k = b; k < min_of(chunks, b + kSumBlock); ++k) {
      const T* part = partials + partial_offset(k, plane, planes);
      sum += spread_term(Moments<T>{T(chunk_count(HW, chunk, k)), part[0], part[1]}, mean);
    }
    total += sum;
  }
  m2 = total;
}

// The backward's finalize: the plane's two chunk sums (sum dy, sum dy * u_hat) added in the
// same fixed order.
template <typename T>
C10_HOST_DEVICE inline void sum_chunk_pairs(const T* partials, int64_t plane, int64_t planes,
                                            int64_t chunks, T& first, T& second) {
  first = second = T(0);
  for (int64_t b = 0; b < chunks; b += kSumBlock) {
    T s0 = T(0), s1 = T(0);
    for (int64_t k = b; k < min_of(chunks, b + kSumBlock); ++k) {
      const T* part = partials + partial_offset(k, plane, planes);
      s0 += part[0];
      s1 += part[1];
    }
    first += s0;
    second += s1;
  }
}

}  // namespace plans
}  // namespace stylegan_fast
