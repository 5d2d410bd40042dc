// CPU kernels of stylegan_fast::bias_act_fwd / bias_act_bwd: the math and checks of bias_act.h
// (shared with bias_act_cuda.cu), each activation compiled into loops of its own, which the
// compiler vectorises. Math runs in float (double for double inputs).

#include <vector>

#include "bias_act.h"
#include "registration.h"

namespace stylegan_fast {
namespace {

using bias_act::Geometry;

constexpr Label kLabel{"bias_act", kCppBackend};

template <typename scalar_t, typename Op>
void forward_kernel(const scalar_t* x, const scalar_t* b, scalar_t* y, const Geometry& g,
                    const Op& op) {
  using acc_t = at::opmath_type<scalar_t>;
  if (b == nullptr) {
    at::parallel_for(0, g.numel, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) y[i] = static_cast<scalar_t>(op.forward(acc_t(x[i])));
    });
    return;
  }
  const int64_t C = g.channels;
  if (g.inner == 1) {
    const int64_t rows = g.numel / C;
    at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / C), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* xr = x + r * C;
        scalar_t* yr = y + r * C;
        for (int64_t c = 0; c < C; ++c) {
          yr[c] = static_cast<scalar_t>(op.forward(acc_t(xr[c]) + acc_t(b[c])));
        }
      }
    });
    return;
  }
  const int64_t inner = g.inner;
  const int64_t rows = g.numel / inner;
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const acc_t bias = acc_t(b[r % C]);
      const scalar_t* xr = x + r * inner;
      scalar_t* yr = y + r * inner;
      for (int64_t j = 0; j < inner; ++j) {
        yr[j] = static_cast<scalar_t>(op.forward(acc_t(xr[j]) + bias));
      }
    }
  });
}

// Writes dx and, when db != nullptr, the per-channel sums of dx (accumulated unrounded, in
// a fixed order).
template <typename scalar_t, typename Op>
void backward_kernel(const scalar_t* dy, const scalar_t* x, const scalar_t* b, scalar_t* dx,
                     scalar_t* db, const Geometry& g, const Op& op) {
  using acc_t = at::opmath_type<scalar_t>;
  if (b == nullptr) {
    at::parallel_for(0, g.numel, kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        dx[i] = static_cast<scalar_t>(op.backward(acc_t(dy[i]), acc_t(x[i])));
      }
    });
    return;
  }
  const int64_t C = g.channels;
  if (g.inner == 1) {
    const int64_t rows = g.numel / C;
    const int64_t rows_per_chunk = std::max<int64_t>(1, kReduceChunk / C);
    const int64_t chunks = ceil_div(rows, rows_per_chunk);
    std::vector<acc_t> partial(db != nullptr ? chunks * C : 0, acc_t(0));
    at::parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        acc_t* sums = db != nullptr ? partial.data() + k * C : nullptr;
        const int64_t r_end = std::min(rows, (k + 1) * rows_per_chunk);
        for (int64_t r = k * rows_per_chunk; r < r_end; ++r) {
          for (int64_t c = 0; c < C; ++c) {
            const int64_t i = r * C + c;
            const acc_t d = op.backward(acc_t(dy[i]), acc_t(x[i]) + acc_t(b[c]));
            dx[i] = static_cast<scalar_t>(d);
            if (sums != nullptr) sums[c] += d;
          }
        }
      }
    });
    if (db != nullptr) {
      for (int64_t c = 0; c < C; ++c) {
        acc_t s = 0;
        for (int64_t k = 0; k < chunks; ++k) s += partial[k * C + c];
        db[c] = static_cast<scalar_t>(s);
      }
    }
    return;
  }
  const int64_t inner = g.inner;
  const int64_t rows = g.numel / inner;
  std::vector<acc_t> row_sums(db != nullptr ? rows : 0, acc_t(0));
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrain / inner), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const acc_t bias = acc_t(b[r % C]);
      const int64_t base = r * inner;
      acc_t s = 0;
      for (int64_t j = 0; j < inner; ++j) {
        const acc_t d = op.backward(acc_t(dy[base + j]), acc_t(x[base + j]) + bias);
        dx[base + j] = static_cast<scalar_t>(d);
        s += d;
      }
      if (db != nullptr) row_sums[r] = s;
    }
  });
  if (db != nullptr) {
    for (int64_t c = 0; c < C; ++c) {
      acc_t s = 0;
      for (int64_t r = c; r < rows; r += C) s += row_sums[r];
      db[c] = static_cast<scalar_t>(s);
    }
  }
}

at::Tensor forward(const bias_act::ForwardArgs& args) {
  const auto& [x, b, dim, a, alpha, gain, clamp] = args;
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor bc = b.has_value() ? b->contiguous() : at::Tensor();
  at::Tensor y = new_output(x, format);
  if (x.numel() == 0) return y;
  const Geometry g = bias_act::describe(xc, b.has_value(), dim);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act_fwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    bias_act::with_epilogue<acc_t, true>(a, alpha, gain, clamp, [&](const auto& op) {
      forward_kernel<scalar_t>(xc.const_data_ptr<scalar_t>(),
                               bc.defined() ? bc.const_data_ptr<scalar_t>() : nullptr,
                               y.mutable_data_ptr<scalar_t>(), g, op);
    });
  });
  return y;
}

bias_act::BackwardOutputs backward(const bias_act::BackwardArgs& args, at::Tensor db) {
  const auto& [dy, forward_args, compute_db] = args;
  const auto& [x, b, dim, a, alpha, gain, clamp] = forward_args;
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor dyc = dy.contiguous(format);
  const at::Tensor bc = b.has_value() ? b->contiguous() : at::Tensor();
  at::Tensor dx = new_output(x, format);
  if (x.numel() == 0) return {dx, db};
  const Geometry g = bias_act::describe(xc, b.has_value(), dim);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act_bwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    bias_act::with_epilogue<acc_t, true>(a, alpha, gain, clamp, [&](const auto& op) {
      backward_kernel<scalar_t>(dyc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
                                bc.defined() ? bc.const_data_ptr<scalar_t>() : nullptr,
                                dx.mutable_data_ptr<scalar_t>(),
                                compute_db ? db.mutable_data_ptr<scalar_t>() : nullptr, g, op);
    });
  });
  return {dx, db};
}

using Cpu = bias_act::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(bias_act, CPU, Cpu::fwd, Cpu::bwd)

}  // namespace stylegan_fast
