// CUDA kernels of stylegan_fast::noise_injection_fwd / noise_injection_bwd: the math and checks
// of noise_injection.h (shared with the CPU kernels, noise_injection.cpp).
//
// Bytes, s = sizeof(scalar): the forward reads x and writes y, 2 s per element (noise is 1/C
// of x, read from L2 by the C planes that share it); the backward reads dy once per output it
// feeds: once for dstrength and once for dnoise when both are wanted (2 s per element instead
// of the 1 s floor), since their sums run along different axes (channels for dnoise, pixels
// for dstrength) and a fused single pass would need a cross-block reduction per pixel.
// - NCHW: a block takes a chunk of one plane (n, c) (2-D grid: chunks x planes), 16-byte
//   accesses when H*W is a multiple of the vector; dstrength's chunk sums are block sums.
// - channels_last: [N*H*W, C] rows, lanes across channels (16-byte vectors of channels when C
//   allows), the noise value of a row loaded once and broadcast, each thread loading several
//   rows before it uses them (>= 32 KB in flight per SM; columns_plan.h); dstrength's sums per
//   (chunk of rows, channel) reduce over the row lanes.
// Every sum has a fixed order (block trees, then sum_partials / channel_dot): no atomics.

#include "columns_plan.h"
#include "cuda_utils.cuh"
#include "noise_injection.h"
#include "registration.h"

namespace stylegan_fast {
namespace {

using namespace stylegan_fast::cuda;
using noise_injection::inject;

constexpr Label kLabel{"noise_injection", kCudaBackend};

constexpr int kThreads = 256;
constexpr int kVectorsPerThread = 4;  // per chunk: a chunk is kThreads * 4 vectors

struct Params {
  const void* x;  // x (forward) or dy (backward)
  const void* noise;
  const void* strength;
  void* y;  // forward output
  int64_t N, C, HW;
  bool noise_per_sample;
  int64_t chunk;  // NCHW: elements per chunk; channels_last: rows per chunk
  int64_t chunks;
  int col_lanes;  // channels_last: lanes across channels (a power of two)
};

// NCHW: plane blockIdx.y (+ k * gridDim.y), elements of chunk blockIdx.x. Forward: y = x +
// s * noise. Backward (kSum): partials[plane * chunks + chunk] = sum of dy * noise.
template <typename scalar_t, int V, bool kSum>
__global__ void __launch_bounds__(kThreads) planes_kernel(Params p,
                                                          at::opmath_type<scalar_t>* partials) {
  using acc_t = at::opmath_type<scalar_t>;
  __shared__ acc_t buf[kThreads / 32];
  const scalar_t* x = static_cast<const scalar_t*>(p.x);
  const scalar_t* noise = static_cast<const scalar_t*>(p.noise);
  const scalar_t* strength = static_cast<const scalar_t*>(p.strength);
  scalar_t* y = static_cast<scalar_t*>(p.y);
  const int64_t k = blockIdx.x;
  const int64_t begin = k * p.chunk, end = std::min(p.HW, begin + p.chunk);
  for (int64_t plane = blockIdx.y; plane < p.N * p.C; plane += gridDim.y) {
    const int64_t n = plane / p.C, c = plane % p.C;
    const scalar_t* xp = x + plane * p.HW;
    const scalar_t* np = noise + (p.noise_per_sample ? n * p.HW : 0);
    const acc_t s = acc_t(strength[c]);
    acc_t sum[1] = {acc_t(0)};
    for (int64_t i = begin + int64_t(threadIdx.x) * V; i < end; i += int64_t(blockDim.x) * V) {
      const Vec<scalar_t, V> xv = load_vec<V>(xp + i), nv = load_vec<V>(np + i);
      if constexpr (kSum) {
#pragma unroll
        for (int j = 0; j < V; ++j) sum[0] += acc_t(xv.v[j]) * acc_t(nv.v[j]);
      } else {
        Vec<scalar_t, V> out;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          out.v[j] = static_cast<scalar_t>(inject(acc_t(xv.v[j]), s, acc_t(nv.v[j])));
        }
        store_vec<V>(y + plane * p.HW + i, out);
      }
    }
    if constexpr (kSum) {
      contiguous_group_sum<1>(sum, blockDim.x, buf);
      if (threadIdx.x == 0) partials[plane * p.chunks + k] = sum[0];
    }
  }
}

// channels_last: rows r = n * HW + i of C channels; block = col_lanes x row_lanes threads over
// col_lanes * V channels (blockIdx.x) and the rows of chunk blockIdx.y; a thread takes V
// adjacent channels of a row (one 16-byte access when kAligned, i.e. C % V == 0; else V scalar
// accesses off one address, the ones past C masked). Each step a thread loads R rows
// (row_lanes apart; plans::rows_in_step) and their noise values before it uses any: R x 16
// bytes of x in flight per thread, >= 32 KB per SM (columns_plan.h). Backward (kSum):
// partials[chunk * C + c] = sum over the chunk's rows of dy * noise, rows in increasing order.
template <typename scalar_t, int V, bool kAligned, bool kSum>
__global__ void __launch_bounds__(plans::kColumnsThreads, plans::kColumnsBlocksPerSm)
    rows_kernel(Params p, at::opmath_type<scalar_t>* partials) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int R = plans::noise_rows_per_thread(V, sizeof(scalar_t));
  acc_t* buf = dynamic_shared<acc_t>();  // V * blockDim.x when kSum
  const scalar_t* x = static_cast<const scalar_t*>(p.x);
  const scalar_t* noise = static_cast<const scalar_t*>(p.noise);
  const scalar_t* strength = static_cast<const scalar_t*>(p.strength);
  scalar_t* y = static_cast<scalar_t*>(p.y);
  const int col_lane = threadIdx.x % p.col_lanes, row_lane = threadIdx.x / p.col_lanes;
  const int row_lanes = blockDim.x / p.col_lanes;
  const int64_t c0 = (int64_t(blockIdx.x) * p.col_lanes + col_lane) * V;
  const int valid = channels_from<V, kAligned>(c0, p.C);  // this thread's channels
  acc_t s[V], sum[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    s[j] = j < valid ? acc_t(strength[c0 + j]) : acc_t(0);
    sum[j] = 0;
  }
  if (valid > 0) {
    const int64_t rows = p.N * p.HW;
    const int64_t r_begin = int64_t(blockIdx.y) * p.chunk;
    const int64_t r_end = std::min(rows, r_begin + p.chunk);
    const plans::NoiseRows noise_rows = plans::noise_rows(p.noise_per_sample, p.HW, row_lanes);
    for (int64_t first = r_begin + row_lane; first < r_end; first += int64_t(row_lanes) * R) {
      const int count = plans::rows_in_step(first, r_end, row_lanes, R);
      Vec<scalar_t, V> xv[R];
      scalar_t nz[R];
      int64_t i = plans::noise_index(noise_rows, first);
#pragma unroll
      for (int u = 0; u < R; ++u) {
        if (u < count) {
          xv[u] = load_channels<V, kAligned>(x + (first + int64_t(u) * row_lanes) * p.C + c0,
                                             valid);
          nz[u] = noise[i];
        }
        i = plans::next_noise_index(noise_rows, i);
      }
#pragma unroll
      for (int u = 0; u < R; ++u) {
        if (u < count) {
          const acc_t noise_value = acc_t(nz[u]);
          if constexpr (kSum) {
#pragma unroll
            for (int j = 0; j < V; ++j) sum[j] += acc_t(xv[u].v[j]) * noise_value;
          } else {
            Vec<scalar_t, V> out;
#pragma unroll
            for (int j = 0; j < V; ++j) {
              out.v[j] = static_cast<scalar_t>(inject(acc_t(xv[u].v[j]), s[j], noise_value));
            }
            store_channels<V, kAligned>(y + (first + int64_t(u) * row_lanes) * p.C + c0, out,
                                        valid);
          }
        }
      }
    }
  }
  if constexpr (kSum) {
    strided_group_sum<V>(sum, col_lane, row_lane, row_lanes, p.col_lanes, buf);
    if (row_lane == 0) {
#pragma unroll
      for (int j = 0; j < V; ++j) {
        if (j < valid) partials[int64_t(blockIdx.y) * p.C + c0 + j] = sum[j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side

// Where the backward's dstrength partials are: sum_partials' (A, K, stride_a, stride_c,
// stride_k).
struct PartialsLayout {
  int64_t A, K, stride_a, stride_c, stride_k;
};

// Runs the forward (y = x + s * noise) or, with kSum, the dstrength partials of dy.
template <typename scalar_t, bool kSum>
PartialsLayout launch(Params& p, bool channels_last, at::Tensor* partials,
                      const at::TensorOptions& acc_options) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int V = kVec<scalar_t>;
  const auto stream = at::cuda::getCurrentCUDAStream();
  if (!channels_last) {
    const bool vec = p.HW % V == 0;
    const int width = vec ? V : 1;
    // Small planes get small blocks (a warp for 4x4 and 8x8), so that threads are not idle.
    const int threads = static_cast<int>(
        std::clamp<int64_t>(next_pow2(ceil_div(p.HW, int64_t(width) * kVectorsPerThread)), 32,
                            kThreads));
    p.chunk = int64_t(threads) * kVectorsPerThread * width;
    p.chunks = ceil_div(p.HW, p.chunk);
    TORCH_CHECK(p.chunks <= std::numeric_limits<int>::max(), kLabel, ": too large");
    const dim3 grid(static_cast<unsigned>(p.chunks),
                    static_cast<unsigned>(std::min<int64_t>(p.N * p.C, 65535)));
    acc_t* part = nullptr;
    if constexpr (kSum) {
      *partials = at::empty({p.N * p.C * p.chunks}, acc_options);
      part = partials->mutable_data_ptr<acc_t>();
    }
    if (vec) {
      planes_kernel<scalar_t, V, kSum><<<grid, threads, 0, stream>>>(p, part);
    } else {
      planes_kernel<scalar_t, 1, kSum><<<grid, threads, 0, stream>>>(p, part);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // Plane n * C + c: dstrength[c] = sum over n, k of partials[(n * C + c) * chunks + k].
    return {p.N, p.chunks, p.C * p.chunks, p.chunks, 1};
  }
  // V channels a thread: 16-byte vectors when C is a multiple of V.
  const int64_t rows = p.N * p.HW;
  const plans::ColumnsPlan m = plans::plan_columns(
      rows, p.C, V, plans::noise_rows_per_thread(V, sizeof(scalar_t)), sm_count());
  p.col_lanes = m.col_lanes;
  p.chunk = m.chunk_rows;
  p.chunks = m.chunks;
  const dim3 grid(static_cast<unsigned>(m.col_tiles), static_cast<unsigned>(m.chunks));
  acc_t* part = nullptr;
  if constexpr (kSum) {
    *partials = at::empty({p.chunks * p.C}, acc_options);
    part = partials->mutable_data_ptr<acc_t>();
  }
  const size_t smem = kSum ? sizeof(acc_t) * V * plans::kColumnsThreads : 0;
  if (p.C % V == 0) {
    rows_kernel<scalar_t, V, true, kSum><<<grid, plans::kColumnsThreads, smem, stream>>>(p, part);
  } else {
    rows_kernel<scalar_t, V, false, kSum><<<grid, plans::kColumnsThreads, smem, stream>>>(p, part);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {p.chunks, 1, p.C, 1, 0};
}

Params params_of(const at::Tensor& x, const at::Tensor& noise, const at::Tensor& strength) {
  Params p{};
  p.x = x.const_data_ptr();
  p.noise = noise.const_data_ptr();
  p.strength = strength.const_data_ptr();
  p.N = x.size(0);
  p.C = x.size(1);
  p.HW = x.size(2) * x.size(3);
  p.noise_per_sample = noise.size(0) == x.size(0) && x.size(0) != 1;
  return p;
}

at::Tensor forward(const noise_injection::ForwardArgs& args) {
  const auto& [x, noise, strength] = args;
  const c10::cuda::CUDAGuard guard(x.device());
  const auto format = kernel_memory_format(x);
  at::Tensor y = new_output(x, format);
  if (x.numel() == 0) return y;
  const at::Tensor xc = aligned_dense(x, format);
  // [N, 1, H, W] has one memory order in both formats.
  const at::Tensor noise_c = aligned_dense(noise, at::MemoryFormat::Contiguous);
  const at::Tensor strength_c = strength.contiguous();
  Params p = params_of(xc, noise_c, strength_c);
  p.y = y.mutable_data_ptr();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "noise_injection_fwd_cuda", [&] {
    launch<scalar_t, false>(p, format == at::MemoryFormat::ChannelsLast, nullptr, x.options());
  });
  return y;
}

noise_injection::BackwardOutputs backward(const noise_injection::BackwardArgs& args) {
  const auto& [dy, noise, strength, compute_dnoise, compute_dstrength] = args;
  const c10::cuda::CUDAGuard guard(dy.device());
  at::Tensor dnoise, dstrength;
  if (!noise_injection::new_grads(dy, noise, strength, compute_dnoise, compute_dstrength, dnoise,
                                  dstrength)) {
    return {dnoise, dstrength};
  }
  const auto format = kernel_memory_format(dy);
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const at::Tensor dyc = aligned_dense(dy, format);
  const at::Tensor noise_c = aligned_dense(noise, at::MemoryFormat::Contiguous);
  const at::Tensor strength_c = strength.contiguous();
  Params p = params_of(dyc, noise_c, strength_c);
  const auto acc_options = dy.options().dtype(accumulation_type(dy));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dy.scalar_type(),
                                  "noise_injection_bwd_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    if (compute_dstrength) {
      at::Tensor partials;
      const PartialsLayout l = launch<scalar_t, true>(p, channels_last, &partials, acc_options);
      sum_partials(partials.const_data_ptr<acc_t>(), dstrength.mutable_data_ptr<scalar_t>(), l.A,
                   l.K, l.stride_a, l.stride_c, l.stride_k, p.C);
    }
    if (compute_dnoise) {
      const scalar_t* dy_ptr = dyc.const_data_ptr<scalar_t>();
      const scalar_t* s = strength_c.const_data_ptr<scalar_t>();
      scalar_t* out = dnoise.mutable_data_ptr<scalar_t>();
      if (channels_last) {
        channel_dot<true>(dy_ptr, s, out, p.N, p.C, p.HW, noise.size(0));
      } else {
        channel_dot<false>(dy_ptr, s, out, p.N, p.C, p.HW, noise.size(0));
      }
    }
  });
  return {dnoise, dstrength};
}

using Cuda = noise_injection::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(noise_injection, CUDA, Cuda::fwd, Cuda::bwd)

}  // namespace stylegan_fast
