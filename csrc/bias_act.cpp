// CPU kernels of stylegan_fast::bias_act_fwd / bias_act_bwd.
//
//   y  = clamp(act(x + b) * gain, -clamp, clamp)
//   dx = act'(x + b) * gain * [|act(x + b) * gain| within clamp] * dy,   db = sum of dx over
//        every dim but `dim`
//
// Each activation's value and backward follow the branch structure of torch's own (vectorised)
// kernels, e.g. relu passes the gradient where its result is not <= 0, so NaN and Inf
// propagate exactly as in the eager reference. Math runs in float (double for double inputs).
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "common.h"

namespace stylegan_fast {
namespace {

enum class Act { Linear, Relu, Lrelu, Tanh, Sigmoid, Elu, Selu, Softplus, Swish };

Act parse_act(c10::string_view name) {
  if (name == "linear") return Act::Linear;
  if (name == "relu") return Act::Relu;
  if (name == "lrelu") return Act::Lrelu;
  if (name == "tanh") return Act::Tanh;
  if (name == "sigmoid") return Act::Sigmoid;
  if (name == "elu") return Act::Elu;
  if (name == "selu") return Act::Selu;
  if (name == "softplus") return Act::Softplus;
  if (name == "swish") return Act::Swish;
  TORCH_CHECK(false, "bias_act: unknown activation '", std::string(name), "'");
}

// torch.nn.functional.selu's constants.
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
// torch.nn.functional.softplus' default threshold (beta = 1).
constexpr double kSoftplusThreshold = 20.0;

template <Act A, typename T>
inline T act_value(T v, T alpha) {
  if constexpr (A == Act::Linear) {
    return v;
  } else if constexpr (A == Act::Relu) {
    return v <= T(0) ? T(0) : v;
  } else if constexpr (A == Act::Lrelu) {
    return v > T(0) ? v : v * alpha;
  } else if constexpr (A == Act::Tanh) {
    return std::tanh(v);
  } else if constexpr (A == Act::Sigmoid) {
    return T(1) / (T(1) + std::exp(-v));
  } else if constexpr (A == Act::Elu) {
    return v <= T(0) ? alpha * std::expm1(v) : v;
  } else if constexpr (A == Act::Selu) {
    return v <= T(0) ? T(kSeluScale * kSeluAlpha) * std::expm1(v) : T(kSeluScale) * v;
  } else if constexpr (A == Act::Softplus) {
    return v > T(kSoftplusThreshold) ? v : std::log1p(std::exp(v));
  } else {  // Swish
    return v / (T(1) + std::exp(-v));
  }
}

// Gradient with respect to the pre-activation v, given the gradient g of the activation's
// output.
template <Act A, typename T>
inline T act_backward(T g, T v, T alpha) {
  if constexpr (A == Act::Linear) {
    return g;
  } else if constexpr (A == Act::Relu) {
    return v <= T(0) ? T(0) : g;
  } else if constexpr (A == Act::Lrelu) {
    return v > T(0) ? g : g * alpha;
  } else if constexpr (A == Act::Tanh) {
    const T t = std::tanh(v);
    return g * (T(1) - t * t);
  } else if constexpr (A == Act::Sigmoid) {
    const T s = T(1) / (T(1) + std::exp(-v));
    return g * (T(1) - s) * s;
  } else if constexpr (A == Act::Elu) {
    // NaN takes the exponential branch (NaN gradient), as torch's vectorised elu_backward
    // does; its scalar fallback, used only for tiny tensors, would pass the gradient.
    return v > T(0) ? g : g * alpha * std::exp(v);
  } else if constexpr (A == Act::Selu) {
    return v > T(0) ? g * T(kSeluScale) : g * T(kSeluScale * kSeluAlpha) * std::exp(v);
  } else if constexpr (A == Act::Softplus) {
    if (v > T(kSoftplusThreshold)) return g;
    const T z = std::exp(v);
    return g * z / (z + T(1));
  } else {  // Swish
    const T s = T(1) / (T(1) + std::exp(-v));
    return g * s * (T(1) + v * (T(1) - s));
  }
}

template <Act A, typename T>
struct Epilogue {
  T alpha, gain, clamp;
  bool has_clamp;

  inline T forward(T v) const {
    const T y = act_value<A>(v, alpha) * gain;
    if (!has_clamp) return y;
    // Comparisons with NaN are false, so NaN passes through as torch.clamp does.
    return y < -clamp ? -clamp : (y > clamp ? clamp : y);
  }

  inline T backward(T dy, T v) const {
    T g = dy;
    if (has_clamp) {
      // torch.clamp's backward passes the gradient where min <= y <= max (false for NaN).
      const T y = act_value<A>(v, alpha) * gain;
      g = (y >= -clamp && y <= clamp) ? g : T(0);
    }
    return act_backward<A>(g * gain, v, alpha);
  }
};

// How the bias axis `dim` sits in the dense buffer the kernel walks: flat index i has bias
// channel (i / stride) % channels, whatever the layout.
struct Geometry {
  int64_t numel = 0;
  int64_t channels = 1;
  // stride == 1: rows of `channels` values, channel fastest (channels_last, dim == 1).
  // Otherwise rows of `stride` values that share one channel, row r has channel r % channels.
  int64_t stride = 1;
};

Geometry describe(const at::Tensor& dense, bool has_bias, int64_t dim) {
  Geometry g;
  g.numel = dense.numel();
  if (has_bias) {
    g.channels = dense.size(dim);
    g.stride = dense.stride(dim);
  }
  return g;
}

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
  if (g.stride == 1) {
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
  const int64_t inner = g.stride;
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
  if (g.stride == 1) {
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
  const int64_t inner = g.stride;
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

// Calls fn(Epilogue<A, acc_t>) with the activation resolved at compile time.
template <typename acc_t, typename Fn>
void with_epilogue(Act act, double alpha, double gain, std::optional<double> clamp, Fn&& fn) {
  const acc_t c = clamp.has_value() ? acc_t(*clamp) : acc_t(0);
  const bool has_clamp = clamp.has_value();
#define STYLEGAN_FAST_ACT_CASE(NAME) \
  case Act::NAME:                    \
    return fn(Epilogue<Act::NAME, acc_t>{acc_t(alpha), acc_t(gain), c, has_clamp});
  switch (act) {
    STYLEGAN_FAST_ACT_CASE(Linear)
    STYLEGAN_FAST_ACT_CASE(Relu)
    STYLEGAN_FAST_ACT_CASE(Lrelu)
    STYLEGAN_FAST_ACT_CASE(Tanh)
    STYLEGAN_FAST_ACT_CASE(Sigmoid)
    STYLEGAN_FAST_ACT_CASE(Elu)
    STYLEGAN_FAST_ACT_CASE(Selu)
    STYLEGAN_FAST_ACT_CASE(Softplus)
    STYLEGAN_FAST_ACT_CASE(Swish)
  }
#undef STYLEGAN_FAST_ACT_CASE
}

void check_inputs(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim) {
  TORCH_CHECK(x.device().is_cpu(), "bias_act (cpp): x must be a CPU tensor");
  if (b.has_value()) {
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act (cpp): dim out of range");
    TORCH_CHECK(b->dim() == 1 && x.dim() > 0 && b->size(0) == x.size(dim),
                "bias_act (cpp): b must have shape [x.shape[dim]]");
    TORCH_CHECK(b->scalar_type() == x.scalar_type() && b->device() == x.device(),
                "bias_act (cpp): b must match x in dtype and device");
  }
}

at::Tensor bias_act_fwd_cpu(const at::Tensor& x, const std::optional<at::Tensor>& b,
                            int64_t dim, c10::string_view act, double alpha, double gain,
                            std::optional<double> clamp) {
  check_inputs(x, b, dim);
  const Act a = parse_act(act);
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor bc = b.has_value() ? b->contiguous() : at::Tensor();
  at::Tensor y = new_output(x, format);
  if (x.numel() == 0) return y;
  const Geometry g = describe(xc, b.has_value(), dim);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act_fwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    with_epilogue<acc_t>(a, alpha, gain, clamp, [&](const auto& op) {
      forward_kernel<scalar_t>(xc.const_data_ptr<scalar_t>(),
                               bc.defined() ? bc.const_data_ptr<scalar_t>() : nullptr,
                               y.mutable_data_ptr<scalar_t>(), g, op);
    });
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor> bias_act_bwd_cpu(const at::Tensor& dy, const at::Tensor& x,
                                                    const std::optional<at::Tensor>& b,
                                                    int64_t dim, c10::string_view act,
                                                    double alpha, double gain,
                                                    std::optional<double> clamp,
                                                    bool compute_db) {
  check_inputs(x, b, dim);
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.scalar_type() == x.scalar_type(),
              "bias_act (cpp): dy must match x in shape and dtype");
  TORCH_CHECK(!compute_db || b.has_value(), "bias_act (cpp): compute_db needs b");
  const Act a = parse_act(act);
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor dyc = dy.contiguous(format);
  const at::Tensor bc = b.has_value() ? b->contiguous() : at::Tensor();
  at::Tensor dx = new_output(x, format);
  at::Tensor db = compute_db ? new_output({x.size(dim)}, x.options())
                             : at::empty({0}, x.options());
  if (compute_db && x.numel() == 0) db.zero_();
  if (x.numel() == 0) return {dx, db};
  const Geometry g = describe(xc, b.has_value(), dim);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act_bwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    with_epilogue<acc_t>(a, alpha, gain, clamp, [&](const auto& op) {
      backward_kernel<scalar_t>(dyc.const_data_ptr<scalar_t>(), xc.const_data_ptr<scalar_t>(),
                                bc.defined() ? bc.const_data_ptr<scalar_t>() : nullptr,
                                dx.mutable_data_ptr<scalar_t>(),
                                compute_db ? db.mutable_data_ptr<scalar_t>() : nullptr, g, op);
    });
  });
  return {dx, db};
}

}  // namespace

TORCH_LIBRARY_IMPL(stylegan_fast, CPU, m) {
  m.impl("bias_act_fwd", &bias_act_fwd_cpu);
  m.impl("bias_act_bwd", &bias_act_bwd_cpu);
}

}  // namespace stylegan_fast
