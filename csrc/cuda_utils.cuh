// Shared helpers for the CUDA kernels: 16-byte vectors, launch geometry and deterministic group
// reductions. (Element math shared with the CPU kernels is in <op>.h, checks in <op>.h and
// common.h, plain helpers such as ceil_div in host_device.h.)
//
// Every kernel here is memory-bound (a few flops per byte), so the rules are the ones that
// reach the DRAM floor: each input read once and each output written once, 16-byte accesses
// where alignment allows (the widest a thread can issue; fewer, fuller memory transactions),
// math in float (double for double), and enough resident warps to keep ~20 KB per SM in
// flight (H100: ~3.35 TB/s x ~0.6 us latency / 132 SMs). Reductions add in a fixed tree whose
// shape depends only on the launch configuration, never on timing: results are bitwise
// reproducible, with no float atomics.
//
// The kernel files are named <op>_cuda.cu: the extension build names each object after its
// source's stem, so <op>.cpp and <op>.cu would both become <op>.o.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>

#include "common.h"

namespace stylegan_fast {
namespace cuda {

// Elements of T in one 16-byte access.
template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <int N, typename T>
__device__ __forceinline__ Vec<T, N> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, N>*>(p);
}

template <int N, typename T>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, N>& v) {
  *reinterpret_cast<Vec<T, N>*>(p) = v;
}

// How many of the V channels [c0, c0 + V) are below C: V or 0 when C % V == 0 (kAligned),
// else anything from 0 to V.
template <int V, bool kAligned>
__device__ __forceinline__ int channels_from(int64_t c0, int64_t C) {
  if (c0 >= C) return 0;
  if constexpr (kAligned) {
    return V;
  } else {
    return C - c0 < V ? static_cast<int>(C - c0) : V;
  }
}

// V adjacent values at p, of which the first `valid` exist: one 16-byte access when kAligned
// (p 16-byte aligned, valid == V), else V scalar accesses off one address (immediate offsets:
// no address register per value), 0 past `valid`.
template <int V, bool kAligned, typename T>
__device__ __forceinline__ Vec<T, V> load_channels(const T* p, int valid) {
  if constexpr (kAligned) {
    return load_vec<V>(p);
  } else {
    Vec<T, V> v;
#pragma unroll
    for (int j = 0; j < V; ++j) v.v[j] = j < valid ? p[j] : T(0);
    return v;
  }
}

template <int V, bool kAligned, typename T>
__device__ __forceinline__ void store_channels(T* p, const Vec<T, V>& v, int valid) {
  if constexpr (kAligned) {
    store_vec<V>(p, v);
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) {
      if (j < valid) p[j] = v.v[j];
    }
  }
}

inline int sm_count() { return at::cuda::getCurrentDeviceProperties()->multiProcessorCount; }

// Blocks for a grid-stride loop over `items` with `threads` per block: enough to fill every SM
// `per_sm` times (resident blocks hide latency), never more than there is work for.
inline int64_t grid_blocks(int64_t items, int threads, int per_sm = 8) {
  const int64_t wanted = ceil_div(std::max<int64_t>(items, 1), threads);
  return std::max<int64_t>(1, std::min<int64_t>(wanted, int64_t(sm_count()) * per_sm));
}

// The block's dynamic shared memory as T[] (16-byte aligned: doubles and vectors fit).
template <typename T>
__device__ __forceinline__ T* dynamic_shared() {
  extern __shared__ __align__(16) unsigned char dynamic_shared_bytes[];
  return reinterpret_cast<T*>(dynamic_shared_bytes);
}

// ---------------------------------------------------------------------------------------------
// Group sums. A group is `lanes` threads (a power of two) that share one sum, e.g. the threads
// of one plane.

// Lanes contiguous in threadIdx.x (lane = threadIdx.x % lanes, groups aligned to `lanes`):
// a butterfly of warp shuffles, then, for groups wider than a warp, the per-warp totals added
// in warp order through `buf` (>= NV * blockDim.x / 32 values). Every lane gets the same bits
// (a + b == b + a exactly, so both partners of a butterfly step agree). Every thread of the
// block must call it.
template <int NV, typename T>
__device__ __forceinline__ void contiguous_group_sum(T (&v)[NV], int lanes, T* buf) {
  const int width = lanes < 32 ? lanes : 32;
  for (int offset = width / 2; offset > 0; offset /= 2) {
#pragma unroll
    for (int j = 0; j < NV; ++j) v[j] += __shfl_xor_sync(0xffffffffu, v[j], offset);
  }
  if (lanes <= 32) return;
  const int warp = threadIdx.x / 32, warps_per_group = lanes / 32;
  const int warps = blockDim.x / 32;
  if (threadIdx.x % 32 == 0) {
#pragma unroll
    for (int j = 0; j < NV; ++j) buf[j * warps + warp] = v[j];
  }
  __syncthreads();
  const int first = warp - warp % warps_per_group;
#pragma unroll
  for (int j = 0; j < NV; ++j) {
    T total = buf[j * warps + first];
    for (int w = 1; w < warps_per_group; ++w) total += buf[j * warps + first + w];
    v[j] = total;
  }
  __syncthreads();  // buf is free again
}

// Any mapping: the caller names its group and lane; `buf` holds NV * groups * lanes values.
// A fixed tree over the lanes, log2(lanes) block barriers. Every thread of the block must call
// it (threads without a group pass group = -1 and get nothing).
template <int NV, typename T>
__device__ __forceinline__ void strided_group_sum(T (&v)[NV], int group, int lane, int lanes,
                                                  int groups, T* buf) {
  const int slots = groups * lanes;
  const int slot = group * lanes + lane;
  if (group >= 0) {
#pragma unroll
    for (int j = 0; j < NV; ++j) buf[j * slots + slot] = v[j];
  }
  __syncthreads();
  for (int s = lanes / 2; s > 0; s /= 2) {
    if (group >= 0 && lane < s) {
#pragma unroll
      for (int j = 0; j < NV; ++j) buf[j * slots + slot] += buf[j * slots + slot + s];
    }
    __syncthreads();
  }
  if (group >= 0) {
#pragma unroll
    for (int j = 0; j < NV; ++j) v[j] = buf[j * slots + group * lanes];
  }
  __syncthreads();  // buf is free again
}

// Sums P[a * stride_a + c * stride_c + k * stride_k] over a < A, k < K into out[c], one block
// per c: the fixed-order second stage of every two-stage reduction here.
template <typename acc_t, typename out_t>
__global__ void sum_partials_kernel(const acc_t* __restrict__ partials, out_t* __restrict__ out,
                                    int64_t A, int64_t K, int64_t stride_a, int64_t stride_c,
                                    int64_t stride_k, int64_t channels) {
  __shared__ acc_t buf[32];
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    acc_t v[1] = {acc_t(0)};
    for (int64_t t = threadIdx.x; t < A * K; t += blockDim.x) {
      const int64_t a = t / K, k = t % K;
      v[0] += partials[a * stride_a + c * stride_c + k * stride_k];
    }
    contiguous_group_sum<1>(v, blockDim.x, buf);
    if (threadIdx.x == 0) out[c] = static_cast<out_t>(v[0]);
  }
}

// Launches sum_partials_kernel with 256 threads (a power of two, as the group sum needs).
template <typename acc_t, typename out_t>
void sum_partials(const acc_t* partials, out_t* out, int64_t A, int64_t K, int64_t stride_a,
                  int64_t stride_c, int64_t stride_k, int64_t channels) {
  if (channels == 0) return;
  const int64_t blocks = std::min<int64_t>(channels, 65535);
  sum_partials_kernel<acc_t, out_t><<<blocks, 256, 0, at::cuda::getCurrentCUDAStream()>>>(
      partials, out, A, K, stride_a, stride_c, stride_k, channels);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// out[m, i] = sum over the samples n of output plane m (n = m when there are N output planes;
// all N when there is one), then over channels c in order, of in[n, c, i] * weight[c]: the
// noise gradient of noise_injection and layer_epilogue, in acc_t. `in` is [N, C, HW] (NCHW)
// or [N, HW, C] (channels_last). NCHW: a thread per pixel (consecutive threads read
// consecutive pixels of each channel plane). channels_last: a warp per pixel, lanes across
// channels (coalesced), the lanes' sums added as a butterfly.
template <bool kChannelsLast, typename in_t, typename weight_t, typename out_t>
__global__ void channel_dot_kernel(const in_t* __restrict__ in, const weight_t* __restrict__ weight,
                                   out_t* __restrict__ out, int64_t N, int64_t C, int64_t HW,
                                   int64_t out_planes) {
  using acc_t = at::opmath_type<out_t>;
  const int64_t samples = out_planes == N ? 1 : N;
  const int64_t total = out_planes * HW;
  if constexpr (kChannelsLast) {
    const int lane = threadIdx.x % 32;
    const int64_t warps = (int64_t(gridDim.x) * blockDim.x) / 32;
    for (int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; w < total;
         w += warps) {
      const int64_t m = w / HW, i = w % HW;
      acc_t s = 0;
      for (int64_t n = m * samples; n < (m + 1) * samples; ++n) {
        const in_t* row = in + (n * HW + i) * C;
        for (int64_t c = lane; c < C; c += 32) s += acc_t(row[c]) * acc_t(weight[c]);
      }
      for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
      if (lane == 0) out[w] = static_cast<out_t>(s);
    }
  } else {
    for (int64_t w = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; w < total;
         w += int64_t(gridDim.x) * blockDim.x) {
      const int64_t m = w / HW, i = w % HW;
      acc_t s = 0;
      for (int64_t n = m * samples; n < (m + 1) * samples; ++n) {
        for (int64_t c = 0; c < C; ++c) s += acc_t(in[(n * C + c) * HW + i]) * acc_t(weight[c]);
      }
      out[w] = static_cast<out_t>(s);
    }
  }
}

template <bool kChannelsLast, typename in_t, typename weight_t, typename out_t>
void channel_dot(const in_t* in, const weight_t* weight, out_t* out, int64_t N, int64_t C,
                 int64_t HW, int64_t out_planes) {
  const int64_t work = out_planes * HW * (kChannelsLast ? 32 : 1);
  if (work == 0) return;
  channel_dot_kernel<kChannelsLast><<<grid_blocks(work, 256), 256, 0,
                                      at::cuda::getCurrentCUDAStream()>>>(in, weight, out, N, C,
                                                                          HW, out_planes);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace stylegan_fast
