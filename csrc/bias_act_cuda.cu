// CUDA kernels of stylegan_fast::bias_act_fwd / bias_act_bwd: the element math and checks of
// bias_act.h (shared with the CPU kernels, bias_act.cpp).
//
// Bytes (the floor, with s = sizeof(scalar)): forward reads x and writes y, 2 s per element;
// backward reads dy and x and writes dx, 3 s per element (b and db are [C], negligible). Each
// kernel below moves exactly that: one read of each input and one write of each output per
// element, in 16-byte accesses (4 floats, 8 halves) with scalar heads and tails.
//
// The dense buffer is viewed as [outer, C, inner] (bias_act::Geometry). Three traversals, none
// dividing per element:
// - flat (no bias): a grid-stride loop over 16-byte vectors.
// - rows (inner > 1, e.g. NCHW with dim = 1): each row of `inner` elements has one channel; a
//   group of lanes walks a row (or a chunk of a long row) and, in the backward, sums its dx.
// - columns (inner == 1, e.g. channels_last or [N, C] with dim = 1): lanes across channels,
//   16-byte vectors of channels when C allows, rows strided over the rest of the block, each
//   thread loading several rows before it uses them (>= 32 KB in flight per SM; the sizing is
//   columns_plan.h's, checked on CPU by tests/ops/test_cuda_plans.py).
// db is a two-stage reduction: per-(row, chunk) or per-(chunk, channel) partial sums in
// acc_t, then one fixed-order sum per channel (sum_partials); no atomics, bitwise
// reproducible. The partials add (rows x chunks) * 4 bytes, under 1% of the tensor for the
// StyleGAN shapes (e.g. [32, 512, 8, 8]: 16K partials for 1M elements).
//
// linear and lrelu, the ones StyleGAN uses, are compiled as their own kernels; the others share
// one kernel that switches on the activation per element (bias_act::with_epilogue).

#include "bias_act.h"
#include "registration.h"
#include "columns_plan.h"
#include "cuda_utils.cuh"

namespace stylegan_fast {
namespace {

using namespace stylegan_fast::cuda;
using bias_act::Geometry;

constexpr Label kLabel{"bias_act", kCudaBackend};

// One element: forward y = op(x + b), or backward dx = op'(dy, x + b). Returns the result in
// acc_t (the backward sums it into db unrounded).
template <bool kBackward, typename scalar_t, typename Op>
__device__ __forceinline__ at::opmath_type<scalar_t> element(const Op& op, scalar_t x, scalar_t dy,
                                                             at::opmath_type<scalar_t> bias) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t v = acc_t(x) + bias;
  if constexpr (kBackward) {
    return op.backward(acc_t(dy), v);
  } else {
    return op.forward(v);
  }
}

struct Operands {
  const void* x;
  const void* dy;  // backward only
  const void* b;   // nullptr without bias
  void* out;       // y or dx
};

// Elements [begin, end) of one bias channel (rows) or of no channel (flat): the aligned middle
// as 16-byte vectors, the ragged ends one element at a time; lane `lane` of `lanes` takes
// every lanes-th vector. Returns this lane's sum of the results (backward) or 0.
template <bool kBackward, bool kSum, typename scalar_t, typename Op>
__device__ __forceinline__ at::opmath_type<scalar_t> run_span(const Op& op, const Operands& io,
                                                              int64_t begin, int64_t end,
                                                              at::opmath_type<scalar_t> bias,
                                                              int64_t lane, int64_t lanes) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int V = kVec<scalar_t>;
  const scalar_t* x = static_cast<const scalar_t*>(io.x);
  const scalar_t* dy = static_cast<const scalar_t*>(io.dy);
  scalar_t* out = static_cast<scalar_t*>(io.out);
  acc_t sum = 0;
  auto one = [&](int64_t i) {
    const acc_t r = element<kBackward>(op, x[i], kBackward ? dy[i] : scalar_t(0), bias);
    out[i] = static_cast<scalar_t>(r);
    if constexpr (kSum) sum += r;
  };
  const int64_t vec_begin = std::min(end, ceil_div(begin, V) * V);
  const int64_t vec_end = std::max(vec_begin, end / V * V);
  for (int64_t i = begin + lane; i < vec_begin; i += lanes) one(i);
  for (int64_t i = vec_begin + lane * V; i < vec_end; i += lanes * V) {
    const Vec<scalar_t, V> xv = load_vec<V>(x + i);
    Vec<scalar_t, V> dyv;
    if constexpr (kBackward) dyv = load_vec<V>(dy + i);
    Vec<scalar_t, V> ov;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const acc_t r = element<kBackward>(op, xv.v[j], kBackward ? dyv.v[j] : scalar_t(0), bias);
      ov.v[j] = static_cast<scalar_t>(r);
      if constexpr (kSum) sum += r;
    }
    store_vec<V>(out + i, ov);
  }
  for (int64_t i = vec_end + lane; i < end; i += lanes) one(i);
  return sum;
}

// No bias: one span over the whole buffer, every thread of the grid a lane.
template <bool kBackward, typename scalar_t, typename Op>
__global__ void flat_kernel(Operands io, int64_t numel, Op op) {
  const int64_t lane = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t lanes = int64_t(gridDim.x) * blockDim.x;
  run_span<kBackward, false, scalar_t>(op, io, 0, numel, at::opmath_type<scalar_t>(0), lane, lanes);
}

// Rows: `rows` rows of `inner` elements, row r of channel r % channels; each row cut into
// `chunks` chunks of `chunk` elements. A block holds blockDim.x / lanes rows (lanes threads
// each, contiguous in threadIdx.x) of one chunk index (blockIdx.y). With kSum, partials[r *
// chunks + k] = the sum of the chunk's dx.
template <bool kBackward, bool kSum, typename scalar_t, typename Op>
__global__ void rows_kernel(Operands io, int64_t rows, int64_t inner, int64_t channels,
                            int64_t chunk, int lanes, at::opmath_type<scalar_t>* partials,
                            Op op) {
  using acc_t = at::opmath_type<scalar_t>;
  __shared__ acc_t buf[32];
  const int rows_per_block = blockDim.x / lanes;
  const int lane = threadIdx.x % lanes;
  const int64_t r = int64_t(blockIdx.x) * rows_per_block + threadIdx.x / lanes;
  const int64_t k = blockIdx.y;
  acc_t sum[1] = {acc_t(0)};
  if (r < rows) {
    const scalar_t* b = static_cast<const scalar_t*>(io.b);
    const acc_t bias = acc_t(b[r % channels]);
    const int64_t begin = r * inner + k * chunk;
    const int64_t end = r * inner + std::min(inner, (k + 1) * chunk);
    sum[0] = run_span<kBackward, kSum, scalar_t>(op, io, begin, end, bias, lane, lanes);
  }
  if constexpr (kSum) {
    contiguous_group_sum<1>(sum, lanes, buf);
    if (r < rows && lane == 0) partials[r * gridDim.y + k] = sum[0];
  }
}

// Columns: a [rows, channels] matrix, channels contiguous. The block is col_lanes x row_lanes
// threads (threadIdx.x = row_lane * col_lanes + col_lane) over a tile of col_lanes * V channels
// (blockIdx.x) and the rows of chunk blockIdx.y ([k * chunk_rows, (k + 1) * chunk_rows)); a
// thread takes V adjacent channels of a row (one 16-byte access when kAligned, i.e. C % V == 0;
// else V scalar accesses off one address, the ones past C masked). Each step a thread loads R
// rows (row_lanes apart; plans::rows_in_step) before it computes any: R x 16 bytes per tensor
// in flight per thread, >= 32 KB per SM (columns_plan.h). With kSum, partials[k * channels + c]
// = the chunk's sum of channel c, each thread adding its rows in increasing order.
template <bool kBackward, bool kSum, int V, bool kAligned, typename scalar_t, typename Op>
__global__ void __launch_bounds__(plans::kColumnsThreads, plans::kColumnsBlocksPerSm)
    columns_kernel(Operands io, int64_t rows, int64_t channels, int64_t chunk_rows,
                   int col_lanes, at::opmath_type<scalar_t>* partials, Op op) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int R = plans::bias_act_rows_per_thread(V, sizeof(scalar_t), kBackward);
  acc_t* buf = dynamic_shared<acc_t>();  // V * blockDim.x values
  const int col_lane = threadIdx.x % col_lanes, row_lane = threadIdx.x / col_lanes;
  const int row_lanes = blockDim.x / col_lanes;
  const int64_t c0 = (int64_t(blockIdx.x) * col_lanes + col_lane) * V;
  const int valid = channels_from<V, kAligned>(c0, channels);  // this thread's channels
  const scalar_t* x = static_cast<const scalar_t*>(io.x);
  const scalar_t* dy = static_cast<const scalar_t*>(io.dy);
  const scalar_t* b = static_cast<const scalar_t*>(io.b);
  scalar_t* out = static_cast<scalar_t*>(io.out);
  acc_t bias[V], sum[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    bias[j] = j < valid ? acc_t(b[c0 + j]) : acc_t(0);
    sum[j] = 0;
  }
  if (valid > 0) {
    const int64_t r_begin = int64_t(blockIdx.y) * chunk_rows;
    const int64_t r_end = std::min(rows, r_begin + chunk_rows);
    for (int64_t first = r_begin + row_lane; first < r_end; first += int64_t(row_lanes) * R) {
      const int count = plans::rows_in_step(first, r_end, row_lanes, R);
      Vec<scalar_t, V> xv[R], dyv[R];
#pragma unroll
      for (int u = 0; u < R; ++u) {
        if (u < count) {
          const int64_t offset = (first + int64_t(u) * row_lanes) * channels + c0;
          xv[u] = load_channels<V, kAligned>(x + offset, valid);
          if constexpr (kBackward) dyv[u] = load_channels<V, kAligned>(dy + offset, valid);
        }
      }
#pragma unroll
      for (int u = 0; u < R; ++u) {
        if (u < count) {
          Vec<scalar_t, V> ov;
#pragma unroll
          for (int j = 0; j < V; ++j) {
            const acc_t v = element<kBackward>(op, xv[u].v[j],
                                               kBackward ? dyv[u].v[j] : scalar_t(0), bias[j]);
            ov.v[j] = static_cast<scalar_t>(v);
            if constexpr (kSum) sum[j] += j < valid ? v : acc_t(0);
          }
          const int64_t offset = (first + int64_t(u) * row_lanes) * channels + c0;
          store_channels<V, kAligned>(out + offset, ov, valid);
        }
      }
    }
  }
  if constexpr (kSum) {
    strided_group_sum<V>(sum, col_lane, row_lane, row_lanes, col_lanes, buf);
    if (row_lane == 0) {
#pragma unroll
      for (int j = 0; j < V; ++j) {
        if (j < valid) partials[int64_t(blockIdx.y) * channels + c0 + j] = sum[j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side

constexpr int kThreads = 256;
// Vectors per lane per chunk in the rows traversal: long rows are cut into chunks of
// kThreads * 8 vectors (8K floats), so that a few long rows still make enough blocks.
constexpr int kVectorsPerLane = 8;

// Runs the traversal for the geometry; returns db (when sum is requested) in `db`.
template <bool kBackward, typename scalar_t, typename Op>
void launch(const Operands& io, const Geometry& g, const Op& op, bool has_bias, at::Tensor* db,
            const at::TensorOptions& options) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int V = kVec<scalar_t>;
  const auto stream = at::cuda::getCurrentCUDAStream();
  const bool sum = db != nullptr;
  if (!has_bias) {
    const int64_t blocks = grid_blocks(ceil_div(g.numel, V), kThreads);
    flat_kernel<kBackward, scalar_t><<<blocks, kThreads, 0, stream>>>(io, g.numel, op);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  const int64_t C = g.channels;
  const auto acc_options = options.dtype(c10::CppTypeToScalarType<acc_t>::value);
  if (g.inner > 1) {
    const int64_t rows = g.numel / g.inner;
    const int lanes = static_cast<int>(std::min<int64_t>(kThreads, next_pow2(ceil_div(g.inner, V))));
    const int64_t chunk = std::max<int64_t>(g.inner <= int64_t(kThreads) * V * kVectorsPerLane
                                                ? g.inner
                                                : int64_t(lanes) * V * kVectorsPerLane,
                                            1);
    const int64_t chunks = ceil_div(g.inner, chunk);
    TORCH_CHECK(chunks <= 65535, "bias_act (cuda): rows of ", g.inner, " elements are too long");
    const dim3 grid(static_cast<unsigned>(ceil_div(rows, kThreads / lanes)),
                    static_cast<unsigned>(chunks));
    at::Tensor partials = sum ? at::empty({rows * chunks}, acc_options) : at::Tensor();
    acc_t* p = sum ? partials.mutable_data_ptr<acc_t>() : nullptr;
    // Only the backward sums (db): no forward kernel with sums is compiled.
    if constexpr (kBackward) {
      if (sum) {
        rows_kernel<kBackward, true, scalar_t>
            <<<grid, kThreads, 0, stream>>>(io, rows, g.inner, C, chunk, lanes, p, op);
      } else {
        rows_kernel<kBackward, false, scalar_t>
            <<<grid, kThreads, 0, stream>>>(io, rows, g.inner, C, chunk, lanes, p, op);
      }
    } else {
      rows_kernel<kBackward, false, scalar_t>
          <<<grid, kThreads, 0, stream>>>(io, rows, g.inner, C, chunk, lanes, p, op);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (sum) {
      // Row r = o * C + c: db[c] = sum over o, k of partials[(o * C + c) * chunks + k].
      sum_partials(p, db->mutable_data_ptr<scalar_t>(), rows / C, chunks, C * chunks, chunks,
                   int64_t(1), C);
    }
    return;
  }
  // Columns: [rows, C], V channels a thread: 16-byte vectors when C is a multiple of V.
  const int64_t rows = g.numel / C;
  const plans::ColumnsPlan m = plans::plan_columns(
      rows, C, V, plans::bias_act_rows_per_thread(V, sizeof(scalar_t), kBackward), sm_count());
  const dim3 grid(static_cast<unsigned>(m.col_tiles), static_cast<unsigned>(m.chunks));
  at::Tensor partials = sum ? at::empty({m.chunks * C}, acc_options) : at::Tensor();
  acc_t* p = sum ? partials.mutable_data_ptr<acc_t>() : nullptr;
  const size_t smem = sum ? sizeof(acc_t) * V * plans::kColumnsThreads : 0;
  auto run = [&](auto aligned, auto with_sum) {
    columns_kernel<kBackward, decltype(with_sum)::value, V, decltype(aligned)::value, scalar_t>
        <<<grid, plans::kColumnsThreads, smem, stream>>>(io, rows, C, m.chunk_rows, m.col_lanes,
                                                          p, op);
  };
  // Only the backward sums (db): no forward kernel with sums is compiled.
  auto with_alignment = [&](auto with_sum) {
    if (C % V == 0) {
      run(std::true_type{}, with_sum);
    } else {
      run(std::false_type{}, with_sum);
    }
  };
  if (kBackward && sum) {
    with_alignment(std::bool_constant<kBackward>{});
  } else {
    with_alignment(std::false_type{});
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (sum) {
    sum_partials(p, db->mutable_data_ptr<scalar_t>(), m.chunks, int64_t(1), C, int64_t(1),
                 int64_t(0), C);
  }
}

at::Tensor forward(const bias_act::ForwardArgs& args) {
  const auto& [x, b, dim, a, alpha, gain, clamp] = args;
  const c10::cuda::CUDAGuard guard(x.device());
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = aligned_dense(x, format);
  const at::Tensor bc = b.has_value() ? b->contiguous() : at::Tensor();
  at::Tensor y = new_output(x, format);
  if (x.numel() == 0) return y;
  const Geometry g = bias_act::describe(xc, b.has_value(), dim);
  const Operands io{xc.const_data_ptr(), nullptr, bc.defined() ? bc.const_data_ptr() : nullptr,
                    y.mutable_data_ptr()};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act_fwd_cuda",
                                  [&] {
    using acc_t = at::opmath_type<scalar_t>;
    bias_act::with_epilogue<acc_t, false>(a, alpha, gain, clamp, [&](const auto& op) {
      launch<false, scalar_t>(io, g, op, b.has_value(), nullptr, x.options());
    });
  });
  return y;
}

bias_act::BackwardOutputs backward(const bias_act::BackwardArgs& args, at::Tensor db) {
  const auto& [dy, forward_args, compute_db] = args;
  const auto& [x, b, dim, a, alpha, gain, clamp] = forward_args;
  const c10::cuda::CUDAGuard guard(x.device());
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = aligned_dense(x, format);
  const at::Tensor dyc = aligned_dense(dy, format);
  const at::Tensor bc = b.has_value() ? b->contiguous() : at::Tensor();
  at::Tensor dx = new_output(x, format);
  if (x.numel() == 0) return {dx, db};
  const Geometry g = bias_act::describe(xc, b.has_value(), dim);
  const Operands io{xc.const_data_ptr(), dyc.const_data_ptr(),
                    bc.defined() ? bc.const_data_ptr() : nullptr, dx.mutable_data_ptr()};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act_bwd_cuda",
                                  [&] {
    using acc_t = at::opmath_type<scalar_t>;
    bias_act::with_epilogue<acc_t, false>(a, alpha, gain, clamp, [&](const auto& op) {
      launch<true, scalar_t>(io, g, op, b.has_value(), compute_db ? &db : nullptr, x.options());
    });
  });
  return {dx, db};
}

using Cuda = bias_act::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(bias_act, CUDA, Cuda::fwd, Cuda::bwd)

}  // namespace stylegan_fast
