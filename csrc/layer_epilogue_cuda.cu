// CUDA kernels of stylegan_fast::layer_epilogue_fwd / layer_epilogue_bwd (the math of
// layer_epilogue.cpp), and of adain_fwd / adain_bwd, the same computation without noise and
// bias and with the identity activation (see the end of the file):
//
//   v = x + noise_strength[c] * noise[n, hw] + bias[c],   u = lrelu(v) * gain
//   y = scale[n, c] * (u - mean) * rstd + style_bias[n, c],  rstd = rsqrt(var + eps)
// Backward, with u_hat = (u - mean) * rstd and g = dy * scale:
//   dscale = sum_hw dy * u_hat,  dstyle_bias = sum_hw dy,
//   dt = gain * lrelu'(v) * rstd * (g - mean_hw(g) - u_hat * mean_hw(g * u_hat)),
//   dx = dt,  dbias = sum_{n,hw} dt,  dnoise_strength = sum_{n,hw} dt * noise,
//   dnoise = sum_c dt * noise_strength (and over n for noise shared by the batch).
//
// Bytes, s = sizeof(scalar): the forward's floor is reading x and writing y, 2 s per element
// (noise is 1/C of that); the backward's is reading dy and x and writing dx, 3 s.
//
// One pass (the floor): a group of threads owns a whole plane (n, c) and keeps its values in
// registers, kE = 16 per thread, so the statistics and the output need no second read:
// - NCHW: `lanes` threads per plane, contiguous in the block (several planes per block when
//   planes are small; 16-byte accesses when H*W allows); group sums are warp shuffles (plus
//   one shared-memory step for planes wider than a warp). Planes up to 1024 * 16 = 16K
//   elements (128 x 128) forward, 512 * 16 = 8K backward (it holds dy and v: twice the
//   registers).
// - channels_last: a block takes 32 adjacent channels of one sample (lanes across channels:
//   64-128 contiguous bytes per pixel) or, when that leaves too few pixel lanes, 32 bytes of
//   channels (one memory sector); pixels spread over the remaining threads. Planes up to
//   16 * (1024 / channels per block) pixels.
// Larger planes take two passes with deterministic partials: each block reduces a chunk of a
// plane (4096 elements, or 128 pixels x 32 channels) to (mean, M2) or (sum dy, sum dy u_hat),
// and a second kernel merges the chunks of its plane in chunk order (Chan's update), then
// re-reads its chunk to write the output: 1.5x the forward floor (x read twice), 1.67x the
// backward's. There are no float atomics anywhere: every sum has a fixed order.
//
// Statistics use the corrected two-pass algorithm on values already in registers: a chunk's
// mean m0, then sum(u - m0) and sum((u - m0)^2), so |mean| >> std does not cancel the variance.
// The per-channel sums over the batch (dbias, dnoise_strength) and dnoise's sum over channels
// go through partial buffers reduced in a fixed order, like the CPU kernels.
#include <torch/library.h>

#include <algorithm>

#include "cuda_utils.cuh"

namespace stylegan_fast {
namespace {

using namespace stylegan_fast::cuda;

constexpr int kE = 16;  // values per thread (elements NCHW, pixels NHWC)
constexpr int kMaxForwardThreads = 1024;
constexpr int kMaxBackwardThreads = 512;
constexpr int kChunkThreads = 256;  // threads per block in the two-pass (chunked) kernels

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
  void* partials;     // [planes, chunks, 2] acc_t (statistics of a chunk)
  void* sums;         // backward: [planes, chunks, 2] acc_t: sum dt, sum dt * noise (or nullptr)
  void* dt;           // backward: acc_t buffer of dt for dnoise (or nullptr)
  int64_t N, C, HW;
  bool noise_per_sample;
  double alpha_gain, gain, eps;
  // Mapping
  int lanes;   // threads per plane (NCHW) or pixel lanes (NHWC), a power of two
  int group;   // NCHW: planes per block; NHWC: channels per block
  int64_t chunk, chunks;  // elements (NCHW) or pixels (NHWC) per chunk, chunks per plane
};

// Which plane and chunk a thread serves, and which of its kE value slots hold elements.
// Slot e is element begin + ((e / V) * lanes + lane) * V + e % V of the plane (NCHW: lanes take
// consecutive 16-byte vectors) or pixel begin + e * lanes + lane (NHWC); slots fill in order,
// so the ones holding an element are exactly e < count.
template <bool kChannelsLast>
struct Place {
  int64_t n, c;        // the plane
  bool valid;          // the plane exists
  int lane;            // position in the plane's group
  int group_index;     // NCHW: plane within the block; NHWC: channel within the block
  int64_t k;           // chunk
  int64_t begin, end;  // the chunk's elements (NCHW) / pixels (NHWC)
  int count;           // slots holding an element
};

template <bool kChannelsLast, int V>
__device__ __forceinline__ Place<kChannelsLast> place(const Params& p) {
  Place<kChannelsLast> pl;
  if constexpr (kChannelsLast) {
    pl.group_index = threadIdx.x % p.group;
    pl.lane = threadIdx.x / p.group;
    const int64_t ctiles = div_up(p.C, p.group);
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
  pl.begin = pl.k * p.chunk;
  pl.end = std::min(p.HW, pl.begin + p.chunk);
  // V divides the plane and the chunk (NCHW), so a vector is wholly inside or outside.
  const int64_t first = pl.begin + int64_t(pl.lane) * V, step = int64_t(p.lanes) * V;
  const int64_t vectors = first < pl.end ? div_up(pl.end - first, step) : 0;
  pl.count = pl.valid ? static_cast<int>(std::min<int64_t>(vectors, kE / V)) * V : 0;
  return pl;
}

// The plane-relative index (NCHW: element, NHWC: pixel) of slot e.
template <bool kChannelsLast, int V>
__device__ __forceinline__ int64_t slot_pixel(const Params& p, const Place<kChannelsLast>& pl,
                                              int e) {
  return pl.begin + (int64_t(e / V) * p.lanes + pl.lane) * V + e % V;
}

// The offset in x (dy, y, dx) of pixel i of the thread's plane.
template <bool kChannelsLast>
__device__ __forceinline__ int64_t offset_of(const Params& p, const Place<kChannelsLast>& pl,
                                             int64_t i) {
  if constexpr (kChannelsLast) {
    return (pl.n * p.HW + i) * p.C + pl.c;
  } else {
    return (pl.n * p.C + pl.c) * p.HW + i;
  }
}

// This thread's values of `src` (x or dy, or noise when kNoise: [N or 1, HW]) as acc_t; 0 in
// slots without an element. NCHW loads whole 16-byte vectors.
template <typename scalar_t, bool kChannelsLast, int V, bool kNoise = false>
__device__ __forceinline__ void load_values(const Params& p, const Place<kChannelsLast>& pl,
                                            const scalar_t* src,
                                            at::opmath_type<scalar_t> (&out)[kE]) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t noise_base = p.noise_per_sample ? pl.n * p.HW : 0;
  constexpr int W = kChannelsLast ? 1 : V;  // elements per access
#pragma unroll
  for (int s = 0; s < kE / W; ++s) {
    Vec<scalar_t, W> v;
    const bool ok = s * W < pl.count;
    if (ok) {
      const int64_t i = slot_pixel<kChannelsLast, W>(p, pl, s * W);
      v = load_vec<W>(src + (kNoise ? noise_base + i : offset_of(p, pl, i)));
    }
#pragma unroll
    for (int j = 0; j < W; ++j) out[s * W + j] = ok ? acc_t(v.v[j]) : acc_t(0);
  }
}

// Stores this thread's values (where it has elements) into dst (y or dx), rounded once.
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void store_values(const Params& p, const Place<kChannelsLast>& pl,
                                             scalar_t* dst,
                                             const at::opmath_type<scalar_t> (&values)[kE]) {
  constexpr int W = kChannelsLast ? 1 : V;
#pragma unroll
  for (int s = 0; s < kE / W; ++s) {
    if (s * W >= pl.count) continue;
    Vec<scalar_t, W> v;
#pragma unroll
    for (int j = 0; j < W; ++j) v.v[j] = static_cast<scalar_t>(values[s * W + j]);
    store_vec<W>(dst + offset_of(p, pl, slot_pixel<kChannelsLast, W>(p, pl, s * W)), v);
  }
}

// Group sums of NV values over the threads of one plane (and chunk).
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
  return v > acc_t(0) ? acc_t(p.gain) : acc_t(p.alpha_gain);
}

// This thread's pre-activations v = (x + strength * noise) + bias (the reference's order).
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void load_pre_activation(const Params& p,
                                                    const Place<kChannelsLast>& pl,
                                                    at::opmath_type<scalar_t> (&v)[kE]) {
  using acc_t = at::opmath_type<scalar_t>;
  load_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<const scalar_t*>(p.x), v);
  const int64_t c = pl.valid ? pl.c : 0;
  if (p.noise != nullptr) {
    const acc_t strength = acc_t(static_cast<const scalar_t*>(p.strength)[c]);
    acc_t noise[kE];
    load_values<scalar_t, kChannelsLast, V, true>(p, pl, static_cast<const scalar_t*>(p.noise),
                                                  noise);
#pragma unroll
    for (int e = 0; e < kE; ++e) v[e] = v[e] + strength * noise[e];
  }
  if (p.bias != nullptr) {
    const acc_t bias = acc_t(static_cast<const scalar_t*>(p.bias)[c]);
#pragma unroll
    for (int e = 0; e < kE; ++e) v[e] = v[e] + bias;
  }
}

// ---------------------------------------------------------------------------------------------
// Forward

// The statistics of one chunk from this thread's u values: mean and M2 = sum (u - mean)^2,
// by the corrected two-pass algorithm, reduced over the plane's group.
template <bool kChannelsLast, typename acc_t>
__device__ __forceinline__ void chunk_statistics(const Params& p, const Place<kChannelsLast>& pl,
                                                 const acc_t (&u)[kE], acc_t* buf, acc_t& mean,
                                                 acc_t& m2) {
  acc_t s[1] = {acc_t(0)};
#pragma unroll
  for (int e = 0; e < kE; ++e) s[0] += u[e];  // slots without an element hold 0
  plane_sum<kChannelsLast>(p, pl, s, buf);
  const acc_t count = acc_t(pl.end - pl.begin);
  const acc_t m0 = s[0] / count;
  acc_t d[2] = {acc_t(0), acc_t(0)};
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    const acc_t dev = e < pl.count ? u[e] - m0 : acc_t(0);
    d[0] += dev;
    d[1] += dev * dev;
  }
  plane_sum<kChannelsLast>(p, pl, d, buf);
  mean = m0 + d[0] / count;
  m2 = d[1] - d[0] * d[0] / count;
}

// u = lrelu(v) * gain for this thread's slots (0 where it has no element).
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void load_activation(const Params& p, const Place<kChannelsLast>& pl,
                                                at::opmath_type<scalar_t> (&u)[kE]) {
  using acc_t = at::opmath_type<scalar_t>;
  load_pre_activation<scalar_t, kChannelsLast, V>(p, pl, u);
#pragma unroll
  for (int e = 0; e < kE; ++e) u[e] = e < pl.count ? u[e] * slope(p, u[e]) : acc_t(0);
}

template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void write_output(const Params& p, const Place<kChannelsLast>& pl,
                                             at::opmath_type<scalar_t> (&u)[kE],
                                             at::opmath_type<scalar_t> mean,
                                             at::opmath_type<scalar_t> rstd) {
  using acc_t = at::opmath_type<scalar_t>;
  if (!pl.valid) return;
  const int64_t plane = pl.n * p.C + pl.c;
  const acc_t a = rstd * acc_t(static_cast<const scalar_t*>(p.scale)[plane]);
  const acc_t b = acc_t(static_cast<const scalar_t*>(p.style_bias)[plane]);
#pragma unroll
  for (int e = 0; e < kE; ++e) u[e] = (u[e] - mean) * a + b;
  store_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<scalar_t*>(p.out), u);
}

template <typename acc_t>
__device__ __forceinline__ acc_t inverse_std(acc_t m2, acc_t count, double eps) {
  acc_t var = m2 / count;
  if (var < acc_t(0)) var = acc_t(0);  // NaN stays NaN
  return acc_t(1) / dev_sqrt(var + acc_t(eps));
}

// Pass 1 (or the only pass, when chunks == 1): u in registers, the chunk's statistics; one
// chunk finishes the plane, several leave (mean, M2) in partials.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kMaxForwardThreads) forward_kernel(Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  const Place<kChannelsLast> pl = place<kChannelsLast, V>(p);
  acc_t u[kE];
  load_activation<scalar_t, kChannelsLast, V>(p, pl, u);
  acc_t mean, m2;
  chunk_statistics<kChannelsLast>(p, pl, u, buf, mean, m2);
  if (!pl.valid) return;
  const int64_t plane = pl.n * p.C + pl.c;
  if (p.chunks == 1) {
    const acc_t rstd = inverse_std(m2, acc_t(p.HW), p.eps);
    if (pl.lane == 0) {
      static_cast<acc_t*>(p.mean)[plane] = mean;
      static_cast<acc_t*>(p.rstd)[plane] = rstd;
    }
    write_output<scalar_t, kChannelsLast, V>(p, pl, u, mean, rstd);
  } else if (pl.lane == 0) {
    acc_t* part = static_cast<acc_t*>(p.partials) + (plane * p.chunks + pl.k) * 2;
    part[0] = mean;
    part[1] = m2;
  }
}

// Pass 2 of chunked planes: merge the plane's chunk statistics in chunk order (Chan et al.'s
// pairwise update; every thread computes the same bits), then re-read the chunk and write y.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kChunkThreads) forward_apply_kernel(Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  const Place<kChannelsLast> pl = place<kChannelsLast, V>(p);
  if (!pl.valid) return;  // no group sums below
  const int64_t plane = pl.n * p.C + pl.c;
  const acc_t* part = static_cast<const acc_t*>(p.partials) + plane * p.chunks * 2;
  acc_t count = acc_t(std::min(p.chunk, p.HW)), mean = part[0], m2 = part[1];
  for (int64_t k = 1; k < p.chunks; ++k) {
    const acc_t nb = acc_t(std::min(p.chunk, p.HW - k * p.chunk));
    const acc_t total = count + nb;
    const acc_t delta = part[2 * k] - mean;
    mean = mean + delta * (nb / total);
    m2 = m2 + part[2 * k + 1] + delta * delta * (count * nb / total);
    count = total;
  }
  const acc_t rstd = inverse_std(m2, acc_t(p.HW), p.eps);
  if (pl.k == 0 && pl.lane == 0) {
    static_cast<acc_t*>(p.mean)[plane] = mean;
    static_cast<acc_t*>(p.rstd)[plane] = rstd;
  }
  acc_t u[kE];
  load_activation<scalar_t, kChannelsLast, V>(p, pl, u);
  write_output<scalar_t, kChannelsLast, V>(p, pl, u, mean, rstd);
}

// ---------------------------------------------------------------------------------------------
// Backward

// sum dy and sum dy * u_hat over this thread's values.
template <typename acc_t, bool kChannelsLast>
__device__ __forceinline__ void dy_sums(const Params& p, const Place<kChannelsLast>& pl,
                                        const acc_t (&v)[kE], const acc_t (&dy)[kE], acc_t mean,
                                        acc_t rstd, acc_t (&s)[2]) {
  s[0] = s[1] = acc_t(0);
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    if (e >= pl.count) continue;
    const acc_t u_hat = (v[e] * slope(p, v[e]) - mean) * rstd;
    s[0] += dy[e];
    s[1] += dy[e] * u_hat;
  }
}

// Given the plane's sums of dy and dy * u_hat: dt for this thread's values (written to dx and
// the dt buffer as requested), and the plane-chunk sums of dt and dt * noise into p.sums.
template <typename scalar_t, bool kChannelsLast, int V>
__device__ __forceinline__ void finish_backward(const Params& p, const Place<kChannelsLast>& pl,
                                                at::opmath_type<scalar_t> (&v)[kE],
                                                const at::opmath_type<scalar_t> (&dy)[kE],
                                                at::opmath_type<scalar_t> mean,
                                                at::opmath_type<scalar_t> rstd,
                                                at::opmath_type<scalar_t> sum_dy,
                                                at::opmath_type<scalar_t> sum_dy_u_hat,
                                                at::opmath_type<scalar_t>* buf) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t plane = pl.valid ? pl.n * p.C + pl.c : 0;
  const acc_t scale = pl.valid ? acc_t(static_cast<const scalar_t*>(p.scale)[plane]) : acc_t(0);
  const acc_t inv_hw = acc_t(1) / acc_t(p.HW);
  const acc_t mean_g = scale * sum_dy * inv_hw;
  const acc_t mean_g_u_hat = scale * sum_dy_u_hat * inv_hw;
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    const acc_t k = slope(p, v[e]);
    const acc_t u_hat = (v[e] * k - mean) * rstd;
    v[e] = e < pl.count ? rstd * (dy[e] * scale - mean_g - u_hat * mean_g_u_hat) * k : acc_t(0);
  }
  if (p.out != nullptr) {
    store_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<scalar_t*>(p.out), v);
  }
  if (p.dt != nullptr) {
    // An acc_t copy of dt (x's layout) for dnoise's sum over channels.
    acc_t* dt = static_cast<acc_t*>(p.dt);
#pragma unroll
    for (int e = 0; e < kE; ++e) {
      if (e < pl.count) dt[offset_of(p, pl, slot_pixel<kChannelsLast, V>(p, pl, e))] = v[e];
    }
  }
  if (p.sums != nullptr) {
    acc_t sums[2] = {acc_t(0), acc_t(0)};
#pragma unroll
    for (int e = 0; e < kE; ++e) sums[0] += v[e];
    if (p.noise != nullptr) {
      acc_t noise[kE];  // read again (1/C of x's bytes) rather than held in registers
      load_values<scalar_t, kChannelsLast, V, true>(
          p, pl, static_cast<const scalar_t*>(p.noise), noise);
#pragma unroll
      for (int e = 0; e < kE; ++e) sums[1] += v[e] * noise[e];
    }
    plane_sum<kChannelsLast>(p, pl, sums, buf);
    if (pl.valid && pl.lane == 0) {
      acc_t* out = static_cast<acc_t*>(p.sums) + (plane * p.chunks + pl.k) * 2;
      out[0] = sums[0];
      out[1] = sums[1];
    }
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

// Pass 1 (or the only pass): dy and v in registers, the plane-chunk sums of dy and dy * u_hat;
// one chunk goes on to dt, several leave their sums in partials.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kMaxBackwardThreads) backward_kernel(Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  const Place<kChannelsLast> pl = place<kChannelsLast, V>(p);
  acc_t v[kE], dy[kE];
  load_pre_activation<scalar_t, kChannelsLast, V>(p, pl, v);
  load_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<const scalar_t*>(p.dy), dy);
  const int64_t plane = pl.valid ? pl.n * p.C + pl.c : 0;
  const acc_t mean = pl.valid ? static_cast<const acc_t*>(p.mean)[plane] : acc_t(0);
  const acc_t rstd = pl.valid ? static_cast<const acc_t*>(p.rstd)[plane] : acc_t(0);
  acc_t s[2];
  dy_sums(p, pl, v, dy, mean, rstd, s);
  plane_sum<kChannelsLast>(p, pl, s, buf);
  if (p.chunks > 1) {
    if (pl.valid && pl.lane == 0) {
      acc_t* part = static_cast<acc_t*>(p.partials) + (plane * p.chunks + pl.k) * 2;
      part[0] = s[0];
      part[1] = s[1];
    }
    return;
  }
  if (pl.valid && pl.lane == 0) write_plane_grads<scalar_t>(p, plane, s[0], s[1]);
  finish_backward<scalar_t, kChannelsLast, V>(p, pl, v, dy, mean, rstd, s[0], s[1], buf);
}

// Pass 2 of chunked planes: the plane's sums from the chunk partials (chunk order), then dt.
template <typename scalar_t, bool kChannelsLast, int V>
__global__ void __launch_bounds__(kChunkThreads) backward_apply_kernel(Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* buf = dynamic_shared<acc_t>();
  const Place<kChannelsLast> pl = place<kChannelsLast, V>(p);
  const int64_t plane = pl.valid ? pl.n * p.C + pl.c : 0;
  acc_t sum_dy = 0, sum_dy_u_hat = 0;
  if (pl.valid) {
    const acc_t* part = static_cast<const acc_t*>(p.partials) + plane * p.chunks * 2;
    for (int64_t k = 0; k < p.chunks; ++k) {
      sum_dy += part[2 * k];
      sum_dy_u_hat += part[2 * k + 1];
    }
    if (pl.k == 0 && pl.lane == 0) write_plane_grads<scalar_t>(p, plane, sum_dy, sum_dy_u_hat);
  }
  acc_t v[kE], dy[kE];
  load_pre_activation<scalar_t, kChannelsLast, V>(p, pl, v);
  load_values<scalar_t, kChannelsLast, V>(p, pl, static_cast<const scalar_t*>(p.dy), dy);
  const acc_t mean = pl.valid ? static_cast<const acc_t*>(p.mean)[plane] : acc_t(0);
  const acc_t rstd = pl.valid ? static_cast<const acc_t*>(p.rstd)[plane] : acc_t(0);
  finish_backward<scalar_t, kChannelsLast, V>(p, pl, v, dy, mean, rstd, sum_dy, sum_dy_u_hat,
                                              buf);
}

// ---------------------------------------------------------------------------------------------
// Host side

// The thread mapping for planes of HW values: one pass when a group of at most max_threads
// threads holds a plane (or, NHWC, a block of channels of it), else chunks.
struct Mapping {
  int threads = 0, lanes = 1, group = 1;
  int64_t chunk = 0, chunks = 1, blocks = 0;
  size_t smem = 0;
};

Mapping plan(int64_t N, int64_t C, int64_t HW, bool channels_last, int max_threads,
             int64_t scalar_size, int64_t acc_size) {
  Mapping m;
  if (channels_last) {
    // 32 channels (64-128 contiguous bytes per pixel) when the plane fits, else one 32-byte
    // sector of channels per pixel (more pixel lanes per block), else chunks.
    const int sector = static_cast<int>(32 / scalar_size);
    int group = 0;
    for (int candidate : {32, sector}) {
      if (HW <= int64_t(max_threads / candidate) * kE) {
        group = candidate;
        break;
      }
    }
    if (group == 0) {
      m.group = 32;
      m.lanes = kChunkThreads / 32;
      m.chunk = int64_t(m.lanes) * kE;
    } else {
      m.group = group;
      m.lanes = static_cast<int>(std::max<int64_t>(1, next_pow2(ceil_div(HW, kE))));
      m.chunk = HW;
    }
    m.threads = m.group * m.lanes;
    m.chunks = ceil_div(HW, m.chunk);
    m.blocks = N * ceil_div(C, m.group);
    m.smem = 2 * size_t(m.threads) * acc_size;  // strided group sums: NV * threads values
  } else {
    if (HW <= int64_t(max_threads) * kE) {
      m.lanes = static_cast<int>(std::max<int64_t>(1, next_pow2(ceil_div(HW, kE))));
      m.chunk = HW;
    } else {
      m.lanes = kChunkThreads;
      m.chunk = int64_t(kChunkThreads) * kE;
    }
    m.threads = std::max(m.lanes, 256);
    m.group = m.threads / m.lanes;
    m.chunks = ceil_div(HW, m.chunk);
    m.blocks = ceil_div(N * C, m.group);
    m.smem = 2 * size_t(m.threads / 32) * acc_size;  // contiguous group sums: per-warp totals
  }
  return m;
}

void apply(Params& p, const Mapping& m) {
  p.lanes = m.lanes;
  p.group = m.group;
  p.chunk = m.chunk;
  p.chunks = m.chunks;
}

dim3 grid_of(const char* op, const Mapping& m) {
  TORCH_CHECK(m.blocks <= std::numeric_limits<int>::max() && m.chunks <= 65535, op,
              " (cuda): the tensor is too large for one launch");
  return dim3(static_cast<unsigned>(m.blocks), static_cast<unsigned>(m.chunks));
}

at::ScalarType statistics_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// `op` names the op in messages: these kernels also serve adain (see the end of the file).
void check_like_x(const char* op, const at::Tensor& t, const at::Tensor& x, const char* name,
                  at::IntArrayRef shape) {
  check_cuda_tensor(t, x, op, name);
  TORCH_CHECK(t.sizes() == shape, op, " (cuda): ", name, " must have shape ", shape, ", got ",
              t.sizes());
}

void check_inputs(const char* op, const at::Tensor& x, const std::optional<at::Tensor>& noise,
                  const std::optional<at::Tensor>& noise_strength,
                  const std::optional<at::Tensor>& bias, const at::Tensor& scale) {
  TORCH_CHECK(x.is_cuda(), op, " (cuda): x must be a CUDA tensor, got ", x.device());
  TORCH_CHECK(x.dim() == 4, op, " (cuda): x must be [N, C, H, W], got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op,
              " (cuda): x must be a floating-point tensor, got ", x.scalar_type());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(noise.has_value() == noise_strength.has_value(), op,
              " (cuda): noise and noise_strength must be given together");
  if (noise.has_value()) {
    TORCH_CHECK(noise->dim() == 4 && (noise->size(0) == N || noise->size(0) == 1), op,
                " (cuda): noise must be [N, 1, H, W] or [1, 1, H, W], got ", noise->sizes());
    check_like_x(op, *noise, x, "noise", {noise->size(0), 1, H, W});
    check_like_x(op, *noise_strength, x, "noise_strength", {C});
  }
  if (bias.has_value()) check_like_x(op, *bias, x, "bias", {C});
  check_like_x(op, scale, x, "scale", {N, C});
}

void check_statistics(const char* op, const at::Tensor& stats, const at::Tensor& x,
                      const char* name) {
  TORCH_CHECK(stats.device() == x.device() && stats.scalar_type() == statistics_type(x), op,
              " (cuda): ", name, " must be ", statistics_type(x), " on ", x.device(), ", got ",
              stats.scalar_type(), " on ", stats.device());
  TORCH_CHECK(stats.sizes() == at::IntArrayRef({x.size(0), x.size(1)}), op, " (cuda): ", name,
              " must have shape [N, C], got ", stats.sizes());
}

at::Tensor dense_or_undefined(const std::optional<at::Tensor>& t) {
  return t.has_value() ? aligned_dense(*t, at::MemoryFormat::Contiguous) : at::Tensor();
}

const void* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.const_data_ptr() : nullptr; }

// 16-byte vectors in NCHW when a plane is a whole number of them (every operand is aligned:
// aligned_dense and fresh allocations).
bool vectorisable(int64_t HW, int64_t scalar_size) { return HW % (16 / scalar_size) == 0; }

// Runs fn(std::integral_constant<int, V>) with V the vector width for this layout and plane.
template <typename scalar_t, typename Fn>
void with_vector_width(bool channels_last, int64_t HW, Fn&& fn) {
  if (!channels_last && vectorisable(HW, sizeof(scalar_t))) {
    fn(std::integral_constant<int, kVec<scalar_t>>{});
  } else {
    fn(std::integral_constant<int, 1>{});
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> epilogue_forward(
    const char* op, const at::Tensor& x, const std::optional<at::Tensor>& noise,
    const std::optional<at::Tensor>& noise_strength, const std::optional<at::Tensor>& bias,
    const at::Tensor& scale, const at::Tensor& style_bias, double alpha, double gain,
    double eps) {
  check_inputs(op, x, noise, noise_strength, bias, scale);
  check_like_x(op, style_bias, x, op == std::string("adain") ? "bias" : "style_bias",
               scale.sizes());
  const c10::cuda::CUDAGuard guard(x.device());
  const auto format = kernel_memory_format(x);
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor xc = aligned_dense(x, format);
  // [N, 1, H, W] has one memory order in both formats.
  const at::Tensor noise_c = dense_or_undefined(noise);
  const at::Tensor strength_c = dense_or_undefined(noise_strength);
  const at::Tensor bias_c = dense_or_undefined(bias);
  const at::Tensor scale_c = scale.contiguous(), style_bias_c = style_bias.contiguous();
  at::Tensor y = new_output(x, format);
  const auto stats_options = x.options().dtype(statistics_type(x));
  at::Tensor mean = new_output({x.size(0), x.size(1)}, stats_options);
  at::Tensor rstd = new_output({x.size(0), x.size(1)}, stats_options);
  if (mean.numel() == 0) return {y, mean, rstd};
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  if (HW == 0) {
    // The statistics of an empty plane: mean NaN, var NaN, as the reference's mean over none.
    mean.fill_(std::numeric_limits<double>::quiet_NaN());
    rstd.fill_(std::numeric_limits<double>::quiet_NaN());
    return {y, mean, rstd};
  }
  Params p{};
  p.x = xc.const_data_ptr();
  p.noise = ptr_or_null(noise_c);
  p.strength = ptr_or_null(strength_c);
  p.bias = ptr_or_null(bias_c);
  p.scale = scale_c.const_data_ptr();
  p.style_bias = style_bias_c.const_data_ptr();
  p.out = y.mutable_data_ptr();
  p.mean = mean.mutable_data_ptr();
  p.rstd = rstd.mutable_data_ptr();
  p.N = N, p.C = C, p.HW = HW;
  p.noise_per_sample = noise_c.defined() && noise_c.size(0) == N && N != 1;
  p.alpha_gain = alpha * gain;
  p.gain = gain;
  p.eps = eps;
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "layer_epilogue_fwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Mapping m =
        plan(N, C, HW, channels_last, kMaxForwardThreads, sizeof(scalar_t), sizeof(acc_t));
    apply(p, m);
    at::Tensor partials;
    if (m.chunks > 1) {
      partials = at::empty({N * C * m.chunks * 2}, stats_options);
      p.partials = partials.mutable_data_ptr();
    }
    with_vector_width<scalar_t>(channels_last, HW, [&](auto vec) {
      constexpr int V = decltype(vec)::value;
      auto run = [&](auto cl) {
        constexpr bool kCL = decltype(cl)::value;
        forward_kernel<scalar_t, kCL, V><<<grid_of(op, m), m.threads, m.smem, stream>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        if (m.chunks > 1) {
          forward_apply_kernel<scalar_t, kCL, V><<<grid_of(op, m), m.threads, 0, stream>>>(p);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      };
      if (channels_last) {
        run(std::true_type{});
      } else {
        run(std::false_type{});
      }
    });
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
epilogue_backward(const char* op, const at::Tensor& dy, const at::Tensor& x,
                  const std::optional<at::Tensor>& noise,
                  const std::optional<at::Tensor>& noise_strength,
                  const std::optional<at::Tensor>& bias, const at::Tensor& scale,
                  const at::Tensor& mean, const at::Tensor& rstd, double alpha, double gain,
                  std::array<bool, 6> output_mask) {
  check_inputs(op, x, noise, noise_strength, bias, scale);
  check_cuda_tensor(dy, x, op, "dy");
  TORCH_CHECK(dy.sizes() == x.sizes(), op, " (cuda): dy must have x's shape ", x.sizes(),
              ", got ", dy.sizes());
  check_statistics(op, mean, x, "mean");
  check_statistics(op, rstd, x, "rstd");
  TORCH_CHECK(!(output_mask[1] || output_mask[2]) || noise.has_value(), op,
              " (cuda): dnoise and dnoise_strength need noise and noise_strength");
  TORCH_CHECK(!output_mask[3] || bias.has_value(), op, " (cuda): dbias needs bias");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const auto format = kernel_memory_format(x);
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor xc = aligned_dense(x, format), dyc = aligned_dense(dy, format);
  const at::Tensor noise_c = dense_or_undefined(noise);
  const at::Tensor strength_c = dense_or_undefined(noise_strength);
  const at::Tensor bias_c = dense_or_undefined(bias);
  const at::Tensor scale_c = scale.contiguous();
  const at::Tensor mean_c = mean.contiguous(), rstd_c = rstd.contiguous();

  auto requested = [&](int i, auto make) {
    return output_mask[i] ? make() : at::empty({0}, x.options());
  };
  at::Tensor dx = requested(0, [&] { return new_output(x, format); });
  at::Tensor dnoise = requested(1, [&] { return new_output(noise_c.sizes(), x.options()); });
  at::Tensor dstrength = requested(2, [&] { return new_output({C}, x.options()); });
  at::Tensor dbias = requested(3, [&] { return new_output({C}, x.options()); });
  at::Tensor dscale = requested(4, [&] { return new_output({N, C}, x.options()); });
  at::Tensor dstyle_bias = requested(5, [&] { return new_output({N, C}, x.options()); });
  if (std::none_of(output_mask.begin(), output_mask.end(), [](bool b) { return b; })) {
    return {dx, dnoise, dstrength, dbias, dscale, dstyle_bias};
  }
  if (N * C == 0 || HW == 0) {
    // Sums over no elements; an empty plane has no x to differentiate.
    at::Tensor* grads[] = {&dx, &dnoise, &dstrength, &dbias, &dscale, &dstyle_bias};
    for (int i = 0; i < 6; ++i) {
      if (output_mask[i]) grads[i]->zero_();
    }
    return {dx, dnoise, dstrength, dbias, dscale, dstyle_bias};
  }
  const auto acc_options = x.options().dtype(statistics_type(x));
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "layer_epilogue_bwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Mapping m =
        plan(N, C, HW, channels_last, kMaxBackwardThreads, sizeof(scalar_t), sizeof(acc_t));
    Params p{};
    apply(p, m);
    p.x = xc.const_data_ptr();
    p.dy = dyc.const_data_ptr();
    p.noise = ptr_or_null(noise_c);
    p.strength = ptr_or_null(strength_c);
    p.bias = ptr_or_null(bias_c);
    p.scale = scale_c.const_data_ptr();
    p.mean = const_cast<void*>(mean_c.const_data_ptr());
    p.rstd = const_cast<void*>(rstd_c.const_data_ptr());
    p.N = N, p.C = C, p.HW = HW;
    p.noise_per_sample = noise_c.defined() && noise_c.size(0) == N && N != 1;
    p.alpha_gain = alpha * gain;
    p.gain = gain;
    p.out = output_mask[0] ? dx.mutable_data_ptr() : nullptr;
    p.dscale = output_mask[4] ? dscale.mutable_data_ptr() : nullptr;
    p.dstyle_bias = output_mask[5] ? dstyle_bias.mutable_data_ptr() : nullptr;
    at::Tensor partials, sums, dt;
    if (m.chunks > 1) {
      partials = at::empty({N * C * m.chunks * 2}, acc_options);
      p.partials = partials.mutable_data_ptr();
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
    with_vector_width<scalar_t>(channels_last, HW, [&](auto vec) {
      constexpr int V = decltype(vec)::value;
      auto run = [&](auto cl) {
        constexpr bool kCL = decltype(cl)::value;
        backward_kernel<scalar_t, kCL, V><<<grid_of(op, m), m.threads, m.smem, stream>>>(p);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        if (m.chunks > 1) {
          backward_apply_kernel<scalar_t, kCL, V><<<grid_of(op, m), m.threads, m.smem, stream>>>(p);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
        if (output_mask[1]) {
          // dnoise = sum over channels (and the batch, for shared noise) of dt * strength.
          channel_dot<kCL>(dt.const_data_ptr<acc_t>(), strength_c.const_data_ptr<scalar_t>(),
                           dnoise.mutable_data_ptr<scalar_t>(), N, C, HW, noise_c.size(0));
        }
      };
      if (channels_last) {
        run(std::true_type{});
      } else {
        run(std::false_type{});
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
  return {dx, dnoise, dstrength, dbias, dscale, dstyle_bias};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_epilogue_fwd_cuda(
    const at::Tensor& x, const std::optional<at::Tensor>& noise,
    const std::optional<at::Tensor>& noise_strength, const std::optional<at::Tensor>& bias,
    const at::Tensor& scale, const at::Tensor& style_bias, double alpha, double gain,
    double eps) {
  return epilogue_forward("layer_epilogue", x, noise, noise_strength, bias, scale, style_bias,
                          alpha, gain, eps);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
layer_epilogue_bwd_cuda(const at::Tensor& dy, const at::Tensor& x,
                        const std::optional<at::Tensor>& noise,
                        const std::optional<at::Tensor>& noise_strength,
                        const std::optional<at::Tensor>& bias, const at::Tensor& scale,
                        const at::Tensor& mean, const at::Tensor& rstd, double alpha, double gain,
                        std::array<bool, 6> output_mask) {
  return epilogue_backward("layer_epilogue", dy, x, noise, noise_strength, bias, scale, mean,
                           rstd, alpha, gain, output_mask);
}

// adain (adain.cpp's math) is the epilogue without noise and bias, with alpha = gain = 1: the
// activation is then the identity exactly (v * 1), u = x, and (scale, bias) are the epilogue's
// (scale, style_bias). Same kernels, same bytes: read x, write y; read dy and x, write dx.
std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_fwd_cuda(const at::Tensor& x,
                                                              const at::Tensor& scale,
                                                              const at::Tensor& bias, double eps) {
  return epilogue_forward("adain", x, std::nullopt, std::nullopt, std::nullopt, scale, bias, 1.0,
                          1.0, eps);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_bwd_cuda(const at::Tensor& dy,
                                                              const at::Tensor& x,
                                                              const at::Tensor& scale,
                                                              const at::Tensor& mean,
                                                              const at::Tensor& rstd,
                                                              std::array<bool, 3> output_mask) {
  auto grads = epilogue_backward(
      "adain", dy, x, std::nullopt, std::nullopt, std::nullopt, scale, mean, rstd, 1.0, 1.0,
      {output_mask[0], false, false, false, output_mask[1], output_mask[2]});
  return {std::get<0>(grads), std::get<4>(grads), std::get<5>(grads)};
}

}  // namespace

TORCH_LIBRARY_IMPL(stylegan_fast, CUDA, m) {
  m.impl("layer_epilogue_fwd", &layer_epilogue_fwd_cuda);
  m.impl("layer_epilogue_bwd", &layer_epilogue_bwd_cuda);
  m.impl("adain_fwd", &adain_fwd_cuda);
  m.impl("adain_bwd", &adain_bwd_cuda);
}

}  // namespace stylegan_fast
