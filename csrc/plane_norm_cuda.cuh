// The CUDA engine of the plane normalisation that adain and layer_epilogue share (the math of
// plane_norm.h, which the CPU kernels run too): plane_norm_forward / plane_norm_backward, the
// twin of the Triton engine stylegan_fast/ops/_plane_norm/. Included by the ops'
// entry points, layer_epilogue_cuda.cu and adain_cuda.cu, which check the inputs; adain runs it
// without noise and bias and with alpha = gain = 1 (the activation is then the identity
// exactly: v * 1).
//
// Every .cu is a translation unit (and a device module) of its own, so each of the two compiles
// these kernels; they are in an anonymous namespace (internal linkage), so each file launches
// its own instantiations and no kernel stub is shared between them.
//
// Bytes, s = sizeof(scalar): the forward's floor is reading x and writing y, 2 s per element
// (noise is 1/C of that); the backward's is reading dy and x and writing dx, 3 s.
//
// The plan (plane_stats.h, checked on CPU by tests/ops/test_cuda_plans.py) cuts a plane into
// chunks and a chunk into tiles of kE values per thread: 64 bytes of acc_t, 16 floats (fp16,
// bf16, fp32) or 8 doubles.
// One pass (the floor): a group of threads owns a whole plane (n, c) and keeps its values in
// registers, so the statistics and the output need no second read:
// - NCHW: `lanes` threads per plane, contiguous in the block (several planes per block when
//   planes are small; 16-byte accesses when H*W allows); group sums are warp shuffles (plus
//   one shared-memory step for planes wider than a warp). Planes up to 1024 * 16 = 16K
//   elements (128 x 128) forward, 512 * 16 = 8K backward (it holds dy and v: twice the
//   registers); half that in double.
// - channels_last: a block takes 32 adjacent channels of one sample (lanes across channels:
//   64-128 contiguous bytes per pixel) or, when that leaves too few pixel lanes, 32 bytes of
//   channels (one memory sector); pixels spread over the remaining threads. Planes up to
//   kE * (max threads / channels per block) pixels, max threads 1024 (512 backward, and
//   forward for fp32 / fp64: plane_stats.h's max_one_pass_threads).
// Larger planes take three kernels, with no float atomics (every sum has a fixed order):
// 1. partials: a block of 256 threads reduces a chunk of a plane (NCHW: up to 4 tiles of 4096
//    elements; channels_last: 32 channels x >= 1024 pixels, 8+ tiles of 128), walking it tile
//    by tile, to (mean, M2) (forward) or (sum dy, sum dy u_hat) (backward);
// 2. finalize: one thread per plane merges its <= 256 chunk partials once, in chunk order,
//    into mean and rstd (forward) or dscale, dstyle_bias and the two sums dx needs (backward);
// 3. apply: re-reads its chunk and writes y (dx), reading the finalized values: no thread
//    merges partials, so the cost no longer grows with the chunk count (it was every thread
//    merging every partial of its plane: 256 per thread at 1024^2 NCHW, 8192 channels_last).
// Traffic: 1.5x the forward floor (x read twice), 1.67x the backward's.
//
// Statistics use the corrected two-pass algorithm on values already in registers (a tile's
// mean m0, then sum(u - m0) and sum((u - m0)^2)), so |mean| >> std does not cancel the
// variance; tiles, threads and chunks merge by Chan's formulas (plane_stats.h), on u less the
// plane's first value (see first_activation). The per-channel sums over the batch (dbias,
// dnoise_strength) and dnoise's sum over channels go through partial buffers reduced in a
// fixed order, like the CPU kernels.
#pragma once

#include <algorithm>
#include <array>
#include <optional>

#include "cuda_utils.cuh"
#include "plane_norm.h"
#include "plane_stats.h"

namespace stylegan_fast {
namespace {

using namespace stylegan_fast::cuda;
using plans::kChunkThreads;

// The chunked kernels' __launch_bounds__: 2 blocks of 256 threads per SM, <= 128 registers a
// thread. ptxas (sm_90) gives them 72-128 with no spill; at 4 blocks (<= 64) the backward ones
// spilled 16-400 bytes (v, dy and noise: 48 values live while a tile loads).
constexpr int kChunkMinBlocks = 2;

// Values a thread holds per tile: 64 bytes of acc_t (16 floats, 8 doubles), so double kernels
// need no more registers than float ones.
template <typename scalar_t>
constexpr int kValues = plans::values_per_thread(sizeof(at::opmath_type<scalar_t>));

// A thread's values of one tile, in acc_t.
template <typename scalar_t>
using Values = at::opmath_type<scalar_t>[kValues<scalar_t>];

struct Params {
  const void* x;
  const void* dy;  // backward
  const void* noise;     // nullptr without noise
  const void* strength;  // nullptr without noise
  const void* bias;      // nullptr without bias
  const void* scale;
  const void* style_bias;  // forward
  void* out;               // y or dx (nullptr when dx is not wanted)
  void* mean;              // [N, C] acc_t (forward: written, backward: read)
  void* rstd;
  void* dscale;       // backward, [N, C] scalar_t or nullptr
  void* dstyle_bias;  // backward, [N, C] scalar_t or nullptr
  void* partials;     // chunked: [chunks, N * C, 2] acc_t (plans::partial_offset)
  void* coeff;        // chunked backward: [N * C, 2] acc_t: the plane's sum dy, sum dy u_hat
  void* sums;         // backward: [planes, chunks, 2] acc_t: sum dt, sum dt * noise (or nullptr)
  void* dt;           // backward: acc_t buffer of dt for dnoise (or nullptr)
  int64_t N, C, HW;
  bool noise_per_sample;
  double alpha_gain, gain, eps;
  // Mapping (plans::PlaneStatsPlan)
  int lanes;   // threads per plane (NCHW) or pixel lanes (NHWC), a power of two
  int group;   // NCHW: planes per block; NHWC: channels per block
  int64_t tile;           // values per tile: lanes * kE (kValues)
  int64_t chunk, chunks;  // elements (NCHW) or pixels (NHWC) per chunk, chunks per plane
};

// Which plane and chunk a thread serves; set_tile then points it at one tile of the chunk.
// Slot e of a tile is value slot_index(tile.begin, lane, lanes, V, e) of the plane (NCHW:
// lanes take consecutive 16-byte vectors; NHWC: V = 1, consecutive pixels); the slots holding
// a value are exactly e < count.
template <bool kChannelsLast>
struct Place {
  int64_t n, c;     // the plane
  bool valid;       // the plane exists
  int lane;         // position in the plane's group
  int group_index;  // NCHW: plane within the block; NHWC: channel within the block
  int64_t k;        // chunk
  plans::Span chunk, tile;
  int count;  // slots of the tile holding a value
};

template <bool kChannelsLast>
__device__ __forceinline__ Place<kChannelsLast> place(const Params& p) {
  Place<kChannelsLast> pl;
  if constexpr (kChannelsLast) {
    pl.group_index = threadIdx.x % p.group;
    pl.lane = threadIdx.x / p.group;
    const int64_t ctiles = ceil_div(p.C, p.group);
    pl.n = blockIdx.x / ctiles;
    pl.c = (blockIdx.x % ctiles) * p.group + pl.group_index;
    pl.valid = pl.c < p.C;
  } else {
    pl.group_index = threadIdx.x / p.lanes;
    pl.lane = threadIdx.x % p.lanes;
    const int64_t plane = int64_t(blockIdx.x) * p.group + pl.group_index;
    pl.n = plane / p.C;
    pl.c = plane % p.C;
    pl.valid = plane < p.N * p.C;
  }
  pl.k = blockIdx.y;
  pl.chunk = plans::chunk_span(p.HW, p.chunk, pl.k);
  pl.tile = pl.chunk;
  pl.count = 0;
  return pl;
}

// V divides the plane, the chunks and the tiles (NCHW), so a vector is wholly inside or outside.
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void set_tile(const Params& p, Place<kChannelsLast>& pl, int64_t t) {
  constexpr int kE = kValues<scalar_t>;
  pl.tile = plans::tile_span(pl.chunk, p.tile, t);
  pl.count = pl.valid ? plans::slot_count(pl.tile, pl.lane, p.lanes, V, kE) : 0;
}

// Calls body() for each tile of the thread's chunk that holds values of its plane, with pl
// pointed at it (set_tile). Threads skip tiles, so body must not reach a barrier.
template <typename scalar_t, bool kChannelsLast, int V, typename Body>
__device__ __forceinline__ void for_each_tile(const Params& p, Place<kChannelsLast>& pl,
                                              Body&& body) {
  const int64_t tiles = plans::tiles_in(pl.chunk, p.tile);
  for (int64_t t = 0; t < tiles; ++t) {
    set_tile<scalar_t, kChannelsLast, V>(p, pl, t);
    if (pl.count == 0) continue;
    body();
  }
}

// The offset in x (dy, y, dx) of pixel (NHWC) / element (NCHW) i of the thread's plane.
template <bool kChannelsLast>
__device__ __forceinline__ int64_t offset_of(const Params& p, const Place<kChannelsLast>& pl,
                                             int64_t i) {
  if constexpr (kChannelsLast) {
    return (pl.n * p.HW + i) * p.C + pl.c;
  } else {
    return (pl.n * p.C + pl.c) * p.HW + i;
  }
}

// A thread's accesses in a tile (16-byte vectors NCHW, one value NHWC): access s is at
// first + s * step of its tensor. first is slot 0's offset (plans::slot_index with e = 0) and
// step that of lanes accesses (slot_index(e + W) - slot_index(e) = lanes * W, which
// tests/ops/test_cuda_plans.py checks), so the slots share one 64-bit index computation.
struct Accesses {
  int64_t first, step;
};

template <bool kChannelsLast, int W>
__device__ __forceinline__ Accesses accesses_of(const Params& p, const Place<kChannelsLast>& pl,
                                                bool noise) {
  const int64_t i = plans::slot_index(pl.tile.begin, pl.lane, p.lanes, W, 0);
  if (noise) {
    const int64_t base = p.noise_per_sample ? pl.n * p.HW : 0;  // noise is [N or 1, HW]
    return {base + i, int64_t(p.lanes) * W};
  }
  return {offset_of(p, pl, i), kChannelsLast ? int64_t(p.lanes) * p.C : int64_t(p.lanes) * W};
}

// The offset of slot e.
template <int W>
__device__ __forceinline__ int64_t slot_offset(const Accesses& a, int e) {
  return a.first + (e / W) * a.step + e % W;
}

// This thread's values of `src` (x or dy, or noise when kNoise: [N or 1, HW]) in the current
// tile as acc_t; 0 in slots without a value. NCHW loads whole 16-byte vectors.
template <typename scalar_t, bool kChannelsLast, int V, bool kNoise = false>
__device__ __forceinline__ void load_values(const Params& p, const Place<kChannelsLast>& pl,
                                            const scalar_t* src,
                                            Values<scalar_t>& out) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int W = kChannelsLast ? 1 : V;  // elements per access
  const Accesses a = accesses_of<kChannelsLast, W>(p, pl, kNoise);
#pragma unroll
  for (int s = 0; s < kE / W; ++s) {
    Vec<scalar_t, W> v;
    const bool ok = s * W < pl.count;
    if (ok) v = load_vec<W>(src + a.first + s * a.step);
#pragma unroll
    for (int j = 0; j < W; ++j) out[s * W + j] = ok ? acc_t(v.v[j]) : acc_t(0);
  }
}

// Stores this thread's values of the current tile (where it has values) into dst (y or dx),
// rounded once.
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void store_values(const Params& p, const Place<kChannelsLast>& pl,
                                             scalar_t* dst,
                                             const Values<scalar_t>& values) {
  constexpr int kE = kValues<scalar_t>;
  constexpr int W = kChannelsLast ? 1 : V;
  const Accesses a = accesses_of<kChannelsLast, W>(p, pl, false);
#pragma unroll
  for (int s = 0; s < kE / W; ++s) {
    if (s * W >= pl.count) continue;
    Vec<scalar_t, W> v;
#pragma unroll
    for (int j = 0; j < W; ++j) v.v[j] = static_cast<scalar_t>(values[s * W + j]);
    store_vec<W>(dst + a.first + s * a.step, v);
  }
}

// Group sums of NV values over the threads of one plane (and chunk). Every thread of the
// block calls it (it has barriers).
template <bool kChannelsLast, int NV, typename T>
__device__ __forceinline__ void plane_sum(const Params& p, const Place<kChannelsLast>& pl,
                                          T (&v)[NV], T* buf) {
  if constexpr (kChannelsLast) {
    strided_group_sum<NV>(v, pl.group_index, pl.lane, p.lanes, p.group, buf);
  } else {
    contiguous_group_sum<NV>(v, p.lanes, buf);
  }
}

template <typename acc_t>
__device__ __forceinline__ acc_t slope(const Params& p, acc_t v) {
  return plane_norm::lrelu_slope(v, p.gain, p.alpha_gain);
}

// This thread's pre-activations v = (x + strength * noise) + bias (the reference's order).
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void load_pre_activation(const Params& p,
                                                    const Place<kChannelsLast>& pl,
                                                    Values<scalar_t>& v) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  load_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<const scalar_t*>(p.x), v);
  const int64_t c = pl.valid ? pl.c : 0;
  if (p.noise != nullptr) {
    const acc_t strength = acc_t(static_cast<const scalar_t*>(p.strength)[c]);
    acc_t noise[kE];
    load_values<scalar_t, kChannelsLast, V, true>(p, pl, static_cast<const scalar_t*>(p.noise),
                                                  noise);
#pragma unroll
    for (int e = 0; e < kE; ++e) v[e] = plane_norm::inject(v[e], strength, noise[e]);
  }
  if (p.bias != nullptr) {
    const acc_t bias = acc_t(static_cast<const scalar_t*>(p.bias)[c]);
#pragma unroll
    for (int e = 0; e < kE; ++e) v[e] = v[e] + bias;
  }
}

// rstd of a plane of `count` values whose squared deviations from the mean sum to m2.
template <typename acc_t>
__device__ __forceinline__ acc_t rstd_of(acc_t m2, acc_t count, double eps) {
  return plane_norm::inverse_std(m2 / count, eps);
}

// ---------------------------------------------------------------------------------------------
// Forward

// u = lrelu(v) * gain for this thread's slots (0 where it has no value).
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void load_activation(const Params& p, const Place<kChannelsLast>& pl,
                                                Values<scalar_t>& u) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  load_pre_activation<scalar_t, kChannelsLast, V>(p, pl, u);
#pragma unroll
  for (int e = 0; e < kE; ++e) u[e] = e < pl.count ? u[e] * slope(p, u[e]) : acc_t(0);
}

// y = (u - mean) * a + b with a = rstd * scale and b = style_bias of the thread's plane.
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void write_output(const Params& p, const Place<kChannelsLast>& pl,
                                             Values<scalar_t>& u,
                                             at::opmath_type<scalar_t> mean,
                                             at::opmath_type<scalar_t> a,
                                             at::opmath_type<scalar_t> b) {
  constexpr int kE = kValues<scalar_t>;
#pragma unroll
  for (int e = 0; e < kE; ++e) u[e] = plane_norm::styled(u[e], mean, a, b);
  store_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<scalar_t*>(p.out), u);
}

template <typename scalar_t>
__device__ __forceinline__ void style_of(const Params& p, int64_t plane,
                                         at::opmath_type<scalar_t> rstd,
                                         at::opmath_type<scalar_t>& a,
                                         at::opmath_type<scalar_t>& b) {
  using acc_t = at::opmath_type<scalar_t>;
  a = rstd * acc_t(static_cast<const scalar_t*>(p.scale)[plane]);
  b = acc_t(static_cast<const scalar_t*>(p.style_bias)[plane]);
}

// One pass: u in registers, the plane's statistics by the corrected two-pass algorithm
// reduced over the group, then y.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(plans::max_one_pass_threads(false, kChannelsLast,
                                                               sizeof(scalar_t)))
    forward_kernel(Params p) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  Place<kChannelsLast> pl = place<kChannelsLast>(p);
  set_tile<scalar_t, kChannelsLast, V>(p, pl, 0);  // the tile is the plane
  const int64_t plane = pl.n * p.C + pl.c;
  acc_t u[kE];
  load_activation<scalar_t, kChannelsLast, V>(p, pl, u);
  acc_t s[1] = {acc_t(0)};
#pragma unroll
  for (int e = 0; e < kE; ++e) s[0] += u[e];  // slots without a value hold 0
  plane_sum<kChannelsLast>(p, pl, s, buf);
  const acc_t count = acc_t(p.HW);
  const acc_t m0 = s[0] / count;
  acc_t d[2] = {acc_t(0), acc_t(0)};
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    const acc_t dev = e < pl.count ? u[e] - m0 : acc_t(0);
    d[0] += dev;
    d[1] += dev * dev;
  }
  plane_sum<kChannelsLast>(p, pl, d, buf);
  if (!pl.valid) return;
  const acc_t mean = m0 + d[0] / count;
  const acc_t rstd = rstd_of(d[1] - d[0] * d[0] / count, count, p.eps);
  if (pl.lane == 0) {
    static_cast<acc_t*>(p.mean)[plane] = mean;
    static_cast<acc_t*>(p.rstd)[plane] = rstd;
  }
  acc_t a, b;
  style_of<scalar_t>(p, plane, rstd, a, b);
  write_output<scalar_t, kChannelsLast, V>(p, pl, u, mean, a, b);
}

// u of the plane's first value (x[n, c, 0]): the chunked statistics are those of u - shift.
// Merged means of chunks and threads are rounded to acc_t, and the rounding of means as large
// as |mean| reaches the variance when |mean| >> std: unshifted, the float merge was off by
// ~1e-5 of M2 at |mean| = 1e4 std and by 1-5% at 3e6 std; shifted, the means are of the size
// of std and the error stays ~1e-7 (tests/ops/test_cuda_plans.py).
template <typename scalar_t, bool kChannelsLast>
__device__ __forceinline__ at::opmath_type<scalar_t> first_activation(
    const Params& p, const Place<kChannelsLast>& pl) {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t v = acc_t(static_cast<const scalar_t*>(p.x)[offset_of(p, pl, 0)]);
  if (p.noise != nullptr) {
    const acc_t strength = acc_t(static_cast<const scalar_t*>(p.strength)[pl.c]);
    const int64_t i = p.noise_per_sample ? pl.n * p.HW : 0;
    v = plane_norm::inject(v, strength, acc_t(static_cast<const scalar_t*>(p.noise)[i]));
  }
  if (p.bias != nullptr) v = v + acc_t(static_cast<const scalar_t*>(p.bias)[pl.c]);
  return v * slope(p, v);
}

// Chunked 1/3: the (mean, M2) of each chunk, of u - shift. A thread merges the moments of its
// values tile by tile (Chan), then the group merges its threads' (plans::mean_term,
// spread_term: two group sums per chunk, not per tile). Chunk 0 leaves the shift in p.mean
// for the finalize.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kChunkThreads, kChunkMinBlocks)
    forward_partials_kernel(Params p) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  Place<kChannelsLast> pl = place<kChannelsLast>(p);
  const acc_t shift = pl.valid ? first_activation<scalar_t>(p, pl) : acc_t(0);
  plans::Moments<acc_t> own{acc_t(0), acc_t(0), acc_t(0)};
  for_each_tile<scalar_t, kChannelsLast, V>(p, pl, [&] {
    acc_t u[kE];
    load_activation<scalar_t, kChannelsLast, V>(p, pl, u);
#pragma unroll
    for (int e = 0; e < kE; ++e) u[e] -= shift;  // slots past count are not read
    own = plans::chan_merge(own, plans::moments_of<kE>(u, pl.count));
  });
  acc_t s[1] = {plans::mean_term(own)};
  plane_sum<kChannelsLast>(p, pl, s, buf);
  const acc_t mean = s[0] / acc_t(pl.chunk.end - pl.chunk.begin);
  acc_t d[1] = {plans::spread_term(own, mean)};
  plane_sum<kChannelsLast>(p, pl, d, buf);
  if (pl.valid && pl.lane == 0) {
    const int64_t plane = pl.n * p.C + pl.c;
    acc_t* part = static_cast<acc_t*>(p.partials) + plans::partial_offset(pl.k, plane, p.N * p.C);
    part[0] = mean;
    part[1] = d[0];
    if (pl.k == 0) static_cast<acc_t*>(p.mean)[plane] = shift;
  }
}

// Chunked 2/3: one thread per plane merges its chunks once, in chunk order, and adds the shift
// back to the mean.
template <typename acc_t>
__global__ void __launch_bounds__(plans::kFinalizeThreads) forward_finalize_kernel(Params p) {
  const int64_t planes = p.N * p.C;
  const int64_t plane = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (plane >= planes) return;
  acc_t mean, m2;
  plans::merge_chunk_moments(static_cast<const acc_t*>(p.partials), plane, planes, p.HW, p.chunk,
                             p.chunks, mean, m2);
  acc_t* mean_out = static_cast<acc_t*>(p.mean);
  mean_out[plane] = mean_out[plane] + mean;  // the shift from forward_partials_kernel
  static_cast<acc_t*>(p.rstd)[plane] = rstd_of(m2, acc_t(p.HW), p.eps);
}

// Chunked 3/3: re-read the chunk tile by tile and write y with the plane's mean and rstd.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kChunkThreads, kChunkMinBlocks)
    forward_apply_kernel(Params p) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  Place<kChannelsLast> pl = place<kChannelsLast>(p);
  if (!pl.valid) return;  // no group sums below
  const int64_t plane = pl.n * p.C + pl.c;
  const acc_t mean = static_cast<const acc_t*>(p.mean)[plane];
  acc_t a, b;
  style_of<scalar_t>(p, plane, static_cast<const acc_t*>(p.rstd)[plane], a, b);
  for_each_tile<scalar_t, kChannelsLast, V>(p, pl, [&] {
    acc_t u[kE];
    load_activation<scalar_t, kChannelsLast, V>(p, pl, u);
    write_output<scalar_t, kChannelsLast, V>(p, pl, u, mean, a, b);
  });
}

// ---------------------------------------------------------------------------------------------
// Backward

// Adds this thread's sum dy and sum dy * u_hat over the tile's values to s.
template <typename acc_t, bool kChannelsLast>
__device__ __forceinline__ void add_dy_sums(const Params& p, const Place<kChannelsLast>& pl,
                                            const Values<acc_t>& v, const Values<acc_t>& dy,
                                            acc_t mean, acc_t rstd, acc_t (&s)[2]) {
  constexpr int kE = kValues<acc_t>;
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    if (e >= pl.count) continue;
    const acc_t u_hat = plane_norm::normalized(v[e] * slope(p, v[e]), mean, rstd);
    s[0] += dy[e];
    s[1] += dy[e] * u_hat;
  }
}

// This thread's pre-activations v and dy in the current tile.
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void load_v_and_dy(const Params& p, const Place<kChannelsLast>& pl,
                                              Values<scalar_t>& v, Values<scalar_t>& dy) {
  load_pre_activation<scalar_t, kChannelsLast, V>(p, pl, v);
  load_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<const scalar_t*>(p.dy), dy);
}

// The thread's plane and the forward's mean and rstd of it (all 0 for a thread without one).
template <typename acc_t>
struct PlaneStatistics {
  int64_t plane;
  acc_t mean, rstd;
};

template <typename acc_t, bool kChannelsLast>
__device__ __forceinline__ PlaneStatistics<acc_t> statistics_of(const Params& p,
                                                                const Place<kChannelsLast>& pl) {
  const int64_t plane = pl.valid ? pl.n * p.C + pl.c : 0;
  return {plane, pl.valid ? static_cast<const acc_t*>(p.mean)[plane] : acc_t(0),
          pl.valid ? static_cast<const acc_t*>(p.rstd)[plane] : acc_t(0)};
}

// The plane's constants of dt.
template <typename acc_t>
struct DtTerms {
  acc_t mean, rstd, scale, mean_g, mean_g_u_hat;
};

template <typename scalar_t>
__device__ __forceinline__ DtTerms<at::opmath_type<scalar_t>> dt_terms(
    const Params& p, int64_t plane, bool valid, at::opmath_type<scalar_t> sum_dy,
    at::opmath_type<scalar_t> sum_dy_u_hat) {
  using acc_t = at::opmath_type<scalar_t>;
  DtTerms<acc_t> d;
  d.mean = valid ? static_cast<const acc_t*>(p.mean)[plane] : acc_t(0);
  d.rstd = valid ? static_cast<const acc_t*>(p.rstd)[plane] : acc_t(0);
  d.scale = valid ? acc_t(static_cast<const scalar_t*>(p.scale)[plane]) : acc_t(0);
  const acc_t inv_hw = acc_t(1) / acc_t(p.HW);
  d.mean_g = d.scale * sum_dy * inv_hw;
  d.mean_g_u_hat = d.scale * sum_dy_u_hat * inv_hw;
  return d;
}

// dt for this thread's values of the tile (in v; 0 in slots without a value), written to dx
// and the dt buffer as requested; adds the thread's sums of dt and dt * noise to sums (for
// p.sums).
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void backward_tile(const Params& p, const Place<kChannelsLast>& pl,
                                              Values<scalar_t>& v,
                                              const Values<scalar_t>& dy,
                                              const DtTerms<at::opmath_type<scalar_t>>& d,
                                              at::opmath_type<scalar_t> (&sums)[2]) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    const acc_t k = slope(p, v[e]);
    const acc_t u_hat = plane_norm::normalized(v[e] * k, d.mean, d.rstd);
    v[e] = e < pl.count ? plane_norm::normalization_grad(dy[e], d.scale, u_hat, d.rstd, d.mean_g,
                                                         d.mean_g_u_hat) *
                              k
                        : acc_t(0);
  }
  if (p.out != nullptr) {
    store_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<scalar_t*>(p.out), v);
  }
  if (p.dt != nullptr) {
    // An acc_t copy of dt (x's layout) for dnoise's sum over channels.
    constexpr int W = kChannelsLast ? 1 : V;
    const Accesses a = accesses_of<kChannelsLast, W>(p, pl, false);
    acc_t* dt = static_cast<acc_t*>(p.dt);
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      if (e < pl.count) dt[slot_offset<W>(a, e)] = v[e];
    }
  }
  if (p.sums != nullptr) {
#pragma unroll
    for (int e = 0; e < kE; ++e) sums[0] += v[e];
    if (p.noise != nullptr) {
      acc_t noise[kE];  // read again (1/C of x's bytes) rather than held in registers
      load_values<scalar_t, kChannelsLast, V, true>(
          p, pl, static_cast<const scalar_t*>(p.noise), noise);
#pragma unroll
      for (int e = 0; e < kE; ++e) sums[1] += v[e] * noise[e];
    }
  }
}

// The group's sums of dt and dt * noise into p.sums (plane-major: [planes, chunks, 2], the
// layout sum_partials reads). Every thread of the block calls it when p.sums is set.
template <bool kChannelsLast, typename acc_t>
__device__ __forceinline__ void store_dt_sums(const Params& p, const Place<kChannelsLast>& pl,
                                              acc_t (&sums)[2], acc_t* buf) {
  plane_sum<kChannelsLast>(p, pl, sums, buf);
  if (pl.valid && pl.lane == 0) {
    acc_t* out = static_cast<acc_t*>(p.sums) + ((pl.n * p.C + pl.c) * p.chunks + pl.k) * 2;
    out[0] = sums[0];
    out[1] = sums[1];
  }
}

template <typename scalar_t>
__device__ __forceinline__ void write_plane_grads(const Params& p, int64_t plane,
                                                  at::opmath_type<scalar_t> sum_dy,
                                                  at::opmath_type<scalar_t> sum_dy_u_hat) {
  if (p.dscale != nullptr) {
    static_cast<scalar_t*>(p.dscale)[plane] = static_cast<scalar_t>(sum_dy_u_hat);
  }
  if (p.dstyle_bias != nullptr) {
    static_cast<scalar_t*>(p.dstyle_bias)[plane] = static_cast<scalar_t>(sum_dy);
  }
}

// One pass: dy and v in registers, the plane's sums of dy and dy * u_hat, then dt.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(plans::max_one_pass_threads(true, kChannelsLast,
                                                               sizeof(scalar_t)))
    backward_kernel(Params p) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  Place<kChannelsLast> pl = place<kChannelsLast>(p);
  set_tile<scalar_t, kChannelsLast, V>(p, pl, 0);  // the tile is the plane
  acc_t v[kE], dy[kE];
  load_v_and_dy<scalar_t, kChannelsLast, V>(p, pl, v, dy);
  const PlaneStatistics<acc_t> stats = statistics_of<acc_t>(p, pl);
  acc_t s[2] = {acc_t(0), acc_t(0)};
  add_dy_sums(p, pl, v, dy, stats.mean, stats.rstd, s);
  plane_sum<kChannelsLast>(p, pl, s, buf);
  if (pl.valid && pl.lane == 0) write_plane_grads<scalar_t>(p, stats.plane, s[0], s[1]);
  const DtTerms<acc_t> d = dt_terms<scalar_t>(p, stats.plane, pl.valid, s[0], s[1]);
  acc_t sums[2] = {acc_t(0), acc_t(0)};
  backward_tile<scalar_t, kChannelsLast, V>(p, pl, v, dy, d, sums);
  if (p.sums != nullptr) store_dt_sums(p, pl, sums, buf);
}

// Chunked 1/3: each chunk's sums of dy and dy * u_hat, accumulated per thread over the tiles,
// then one group sum.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kChunkThreads, kChunkMinBlocks)
    backward_partials_kernel(Params p) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  Place<kChannelsLast> pl = place<kChannelsLast>(p);
  const PlaneStatistics<acc_t> stats = statistics_of<acc_t>(p, pl);
  acc_t s[2] = {acc_t(0), acc_t(0)};
  // Not for_each_tile: through its lambda, this loop compiled to other register moves (PTX,
  // nvcc 13.0); written out it keeps the code that was measured on the GPU.
  const int64_t tiles = plans::tiles_in(pl.chunk, p.tile);
  for (int64_t t = 0; t < tiles; ++t) {
    set_tile<scalar_t, kChannelsLast, V>(p, pl, t);
    if (pl.count == 0) continue;  // no barrier in this loop
    acc_t v[kE], dy[kE];
    load_v_and_dy<scalar_t, kChannelsLast, V>(p, pl, v, dy);
    add_dy_sums(p, pl, v, dy, stats.mean, stats.rstd, s);
  }
  plane_sum<kChannelsLast>(p, pl, s, buf);
  if (pl.valid && pl.lane == 0) {
    acc_t* part =
        static_cast<acc_t*>(p.partials) + plans::partial_offset(pl.k, stats.plane, p.N * p.C);
    part[0] = s[0];
    part[1] = s[1];
  }
}

// Chunked 2/3: one thread per plane adds its chunks' sums once, in chunk order: dscale,
// dstyle_bias, and the two sums dt needs (p.coeff).
template <typename scalar_t>
__global__ void __launch_bounds__(plans::kFinalizeThreads) backward_finalize_kernel(Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t planes = p.N * p.C;
  const int64_t plane = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (plane >= planes) return;
  acc_t sum_dy, sum_dy_u_hat;
  plans::sum_chunk_pairs(static_cast<const acc_t*>(p.partials), plane, planes, p.chunks, sum_dy,
                         sum_dy_u_hat);
  write_plane_grads<scalar_t>(p, plane, sum_dy, sum_dy_u_hat);
  acc_t* coeff = static_cast<acc_t*>(p.coeff) + plane * 2;
  coeff[0] = sum_dy;
  coeff[1] = sum_dy_u_hat;
}

// Chunked 3/3: re-read the chunk tile by tile and write dt with the plane's finalized sums;
// the chunk's sums of dt and dt * noise take one group sum at the end.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kChunkThreads, kChunkMinBlocks)
    backward_apply_kernel(Params p) {
  constexpr int kE = kValues<scalar_t>;
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  Place<kChannelsLast> pl = place<kChannelsLast>(p);
  const int64_t plane = pl.valid ? pl.n * p.C + pl.c : 0;
  const acc_t* coeff = static_cast<const acc_t*>(p.coeff) + plane * 2;
  const DtTerms<acc_t> d = dt_terms<scalar_t>(p, plane, pl.valid, pl.valid ? coeff[0] : acc_t(0),
                                              pl.valid ? coeff[1] : acc_t(0));
  acc_t sums[2] = {acc_t(0), acc_t(0)};
  for_each_tile<scalar_t, kChannelsLast, V>(p, pl, [&] {
    acc_t v[kE], dy[kE];
    load_v_and_dy<scalar_t, kChannelsLast, V>(p, pl, v, dy);
    backward_tile<scalar_t, kChannelsLast, V>(p, pl, v, dy, d, sums);
  });
  if (p.sums != nullptr) store_dt_sums(p, pl, sums, buf);
}

// ---------------------------------------------------------------------------------------------
// Host side

void apply(Params& p, const plans::PlaneStatsPlan& m) {
  p.lanes = m.lanes;
  p.group = m.group;
  p.tile = m.tile;
  p.chunk = m.chunk;
  p.chunks = m.chunks;
}

dim3 grid_of(const Label& label, const plans::PlaneStatsPlan& m) {
  TORCH_CHECK(m.blocks <= plans::kMaxGridX && m.chunks <= plans::kMaxGridY &&
                  m.finalize_blocks <= plans::kMaxGridX,
              label, ": the tensor is too large for one launch");
  return dim3(static_cast<unsigned>(m.blocks), static_cast<unsigned>(m.chunks));
}

const void* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; }

// What the forward and the backward pass alike: the inputs (dense and aligned), the shape and
// the activation.
Params params_of(const at::Tensor& xc, const plane_norm::Prologue& prologue,
                 const at::Tensor& scale_c, double alpha, double gain) {
  Params p{};
  p.x = xc.const_data_ptr();
  p.noise = ptr_or_null(prologue.noise);
  p.strength = ptr_or_null(prologue.noise_strength);
  p.bias = ptr_or_null(prologue.bias);
  p.scale = scale_c.const_data_ptr();
  p.N = xc.size(0), p.C = xc.size(1), p.HW = xc.size(2) * xc.size(3);
  p.noise_per_sample = prologue.noise_per_sample(p.N);
  p.alpha_gain = alpha * gain;
  p.gain = gain;
  return p;
}

// 16-byte vectors in NCHW when a plane is a whole number of them (every operand is aligned:
// aligned_dense and fresh allocations).
bool vectorisable(int64_t HW, int64_t scalar_size) { return HW % (16 / scalar_size) == 0; }

// Runs fn(std::bool_constant<channels_last>, std::integral_constant<int, V>) with V the vector
// width for this layout and plane: NCHW 16-byte vectors or scalars, channels_last scalars
// (one channel of a pixel per slot), so only those three kernels are compiled.
template <typename scalar_t, typename Fn>
void with_layout(bool channels_last, int64_t HW, Fn&& fn) {
  if (channels_last) {
    fn(std::true_type{}, std::integral_constant<int, 1>{});
  } else if (vectorisable(HW, sizeof(scalar_t))) {
    fn(std::false_type{}, std::integral_constant<int, kVec<scalar_t>>{});
  } else {
    fn(std::false_type{}, std::integral_constant<int, 1>{});
  }
}

// The forward (y, mean, rstd) of checked inputs; `label` names the op in messages.
std::tuple<at::Tensor, at::Tensor, at::Tensor> plane_norm_forward(
    const Label& label, const at::Tensor& x, const std::optional<at::Tensor>& noise,
    const std::optional<at::Tensor>& noise_strength, const std::optional<at::Tensor>& bias,
    const at::Tensor& scale, const at::Tensor& style_bias, double alpha, double gain,
    double eps) {
  const c10::cuda::CUDAGuard guard(x.device());
  const auto format = kernel_memory_format(x);
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor xc = aligned_dense(x, format);
  const plane_norm::Prologue prologue =
      plane_norm::dense_prologue(kCudaBackend, noise, noise_strength, bias);
  const at::Tensor scale_c = scale.contiguous(), style_bias_c = style_bias.contiguous();
  auto [y, mean, rstd] = plane_norm::new_forward_outputs(x, format);
  if (x.numel() == 0) return {y, mean, rstd};
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const auto stats_options = x.options().dtype(accumulation_type(x));
  Params p = params_of(xc, prologue, scale_c, alpha, gain);
  p.style_bias = style_bias_c.const_data_ptr();
  p.out = y.mutable_data_ptr();
  p.mean = mean.mutable_data_ptr();
  p.rstd = rstd.mutable_data_ptr();
  p.eps = eps;
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "plane_norm_forward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const plans::PlaneStatsPlan m = plans::plan_plane_stats(
        N, C, HW, channels_last, /*backward=*/false, sizeof(scalar_t), sizeof(acc_t), sm_count());
    apply(p, m);
    const dim3 grid = grid_of(label, m);
    at::Tensor partials;
    if (m.chunked) {
      partials = at::empty({m.chunks * N * C * 2}, stats_options);
      p.partials = partials.mutable_data_ptr();
    }
    with_layout<scalar_t>(channels_last, HW, [&](auto cl, auto vec) {
      constexpr bool kCL = decltype(cl)::value;
      constexpr int V = decltype(vec)::value;
      if (!m.chunked) {
        forward_kernel<scalar_t, kCL, V><<<grid, m.threads, m.smem, stream>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        return;
      }
      forward_partials_kernel<scalar_t, kCL, V><<<grid, m.threads, m.smem, stream>>>(p);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      forward_finalize_kernel<acc_t><<<static_cast<unsigned>(m.finalize_blocks),
                                       plans::kFinalizeThreads, 0, stream>>>(p);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      forward_apply_kernel<scalar_t, kCL, V><<<grid, m.threads, 0, stream>>>(p);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {y, mean, rstd};
}

// The backward (layer_epilogue_bwd's six gradients, [0] where output_mask is false) of checked
// inputs; `label` names the op in messages.
std::array<at::Tensor, 6> plane_norm_backward(
    const Label& label, const at::Tensor& dy, const at::Tensor& x,
    const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_strength,
    const std::optional<at::Tensor>& bias, const at::Tensor& scale, const at::Tensor& mean,
    const at::Tensor& rstd, double alpha, double gain, std::array<bool, 6> output_mask) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const auto format = kernel_memory_format(x);
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor xc = aligned_dense(x, format), dyc = aligned_dense(dy, format);
  const plane_norm::Prologue prologue =
      plane_norm::dense_prologue(kCudaBackend, noise, noise_strength, bias);
  const at::Tensor scale_c = scale.contiguous();
  const at::Tensor mean_c = mean.contiguous(), rstd_c = rstd.contiguous();

  std::array<at::Tensor, 6> grads = plane_norm::new_grads(x, prologue.noise, format, output_mask);
  if (std::none_of(output_mask.begin(), output_mask.end(), [](bool b) { return b; })) {
    return grads;
  }
  if (N * C == 0 || HW == 0) {
    // Sums over no elements; an empty plane has no x to differentiate.
    for (int i = 0; i < 6; ++i) {
      if (output_mask[i]) grads[i].zero_();
    }
    return grads;
  }
  auto& [dx, dnoise, dstrength, dbias, dscale, dstyle_bias] = grads;
  const auto acc_options = x.options().dtype(accumulation_type(x));
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "plane_norm_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const plans::PlaneStatsPlan m = plans::plan_plane_stats(
        N, C, HW, channels_last, /*backward=*/true, sizeof(scalar_t), sizeof(acc_t), sm_count());
    const dim3 grid = grid_of(label, m);
    Params p = params_of(xc, prologue, scale_c, alpha, gain);
    apply(p, m);
    p.dy = dyc.const_data_ptr();
    p.mean = const_cast<void*>(mean_c.const_data_ptr());
    p.rstd = const_cast<void*>(rstd_c.const_data_ptr());
    p.out = output_mask[0] ? dx.mutable_data_ptr() : nullptr;
    p.dscale = output_mask[4] ? dscale.mutable_data_ptr() : nullptr;
    p.dstyle_bias = output_mask[5] ? dstyle_bias.mutable_data_ptr() : nullptr;
    at::Tensor partials, coeff, sums, dt;
    if (m.chunked) {
      partials = at::empty({m.chunks * N * C * 2}, acc_options);
      p.partials = partials.mutable_data_ptr();
      coeff = at::empty({N * C * 2}, acc_options);
      p.coeff = coeff.mutable_data_ptr();
    }
    if (output_mask[2] || output_mask[3]) {
      sums = at::empty({N * C * m.chunks * 2}, acc_options);
      p.sums = sums.mutable_data_ptr();
    }
    if (output_mask[1]) {
      // dx itself when it is wanted and already holds dt unrounded (float and double).
      if (output_mask[0] && std::is_same_v<scalar_t, acc_t>) {
        dt = dx;
      } else {
        dt = at::empty(x.sizes(), acc_options.memory_format(format));
        p.dt = dt.mutable_data_ptr();
      }
    }
    with_layout<scalar_t>(channels_last, HW, [&](auto cl, auto vec) {
      constexpr bool kCL = decltype(cl)::value;
      constexpr int V = decltype(vec)::value;
      if (!m.chunked) {
        backward_kernel<scalar_t, kCL, V><<<grid, m.threads, m.smem, stream>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      } else {
        backward_partials_kernel<scalar_t, kCL, V><<<grid, m.threads, m.smem, stream>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        backward_finalize_kernel<scalar_t><<<static_cast<unsigned>(m.finalize_blocks),
                                             plans::kFinalizeThreads, 0, stream>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        // dt is needed for dx, the dbias / dnoise_strength sums, or dnoise (only dscale
        // and dstyle_bias wanted: the finalize wrote them, nothing to apply).
        if (p.out != nullptr || p.sums != nullptr || p.dt != nullptr) {
          backward_apply_kernel<scalar_t, kCL, V><<<grid, m.threads, m.smem, stream>>>(p);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      }
      if (output_mask[1]) {
        // dnoise = sum over channels (and the batch, for shared noise) of dt * strength.
        channel_dot<kCL>(dt.const_data_ptr<acc_t>(),
                         prologue.noise_strength.const_data_ptr<scalar_t>(),
                         dnoise.mutable_data_ptr<scalar_t>(), N, C, HW, prologue.noise.size(0));
      }
    });
    // Batch (and chunk) sums of the per-plane partials, in a fixed order.
    const int64_t K = m.chunks;
    if (output_mask[3]) {
      sum_partials(sums.const_data_ptr<acc_t>(), dbias.mutable_data_ptr<scalar_t>(), N, K,
                   C * K * 2, K * 2, int64_t(2), C);
    }
    if (output_mask[2]) {
      sum_partials(sums.const_data_ptr<acc_t>() + 1, dstrength.mutable_data_ptr<scalar_t>(), N,
                   K, C * K * 2, K * 2, int64_t(2), C);
    }
  });
  return grads;
}

}  // namespace
}  // namespace stylegan_fast
