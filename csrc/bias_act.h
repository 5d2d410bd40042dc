// bias_act's element math, argument checks, view of the bias axis and entry points, shared by
// its CPU kernels (bias_act.cpp) and CUDA kernels (bias_act_cuda.cu):
//
//   y  = clamp(act(x + b) * gain, -clamp, clamp)
//   dx = act'(x + b) * gain * [|act(x + b) * gain| within clamp] * dy,   db = sum of dx over
//        every dim but `dim`
//
// The math is C10_HOST_DEVICE, so the CPU tests exercise the very functions the GPU runs. Each
// activation's value and backward follow the branch structure of torch's own (vectorised)
// kernels, e.g. relu passes the gradient where its result is not <= 0, so NaN and Inf propagate
// exactly as in the eager reference. Math runs in acc_t: float (double for double inputs).
//
// The <cmath> functions are called as std::tanh etc. on both sides: nvcc maps std::tanh(float)
// to tanhf and std::tanh(double) to tanh, the same PTX as calling those (checked with nvcc 13.0,
// sm_90).
#pragma once

#include <c10/util/string_view.h>

#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

#include "common.h"

namespace stylegan_fast {
namespace bias_act {

enum class Act : int { Linear, Relu, Lrelu, Tanh, Sigmoid, Elu, Selu, Softplus, Swish };

inline Act parse_act(c10::string_view name, const Label& label) {
  if (name == "linear") return Act::Linear;
  if (name == "relu") return Act::Relu;
  if (name == "lrelu") return Act::Lrelu;
  if (name == "tanh") return Act::Tanh;
  if (name == "sigmoid") return Act::Sigmoid;
  if (name == "elu") return Act::Elu;
  if (name == "selu") return Act::Selu;
  if (name == "softplus") return Act::Softplus;
  if (name == "swish") return Act::Swish;
  TORCH_CHECK(false, label, ": unknown activation '", std::string(name), "'");
}

// torch.nn.functional.selu's constants and softplus' default threshold (beta = 1).
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSoftplusThreshold = 20.0;

// Always inlined: called with a compile-time `act`, the switch folds away (the CPU kernels'
// vectorised loops depend on it).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T act_value(Act act, T v, T alpha) {
  switch (act) {
    case Act::Linear:
      return v;
    case Act::Relu:
      return v <= T(0) ? T(0) : v;
    case Act::Lrelu:
      return v > T(0) ? v : v * alpha;
    case Act::Tanh:
      return std::tanh(v);
    case Act::Sigmoid:
      return T(1) / (T(1) + std::exp(-v));
    case Act::Elu:
      return v <= T(0) ? alpha * std::expm1(v) : v;
    case Act::Selu:
      return v <= T(0) ? T(kSeluScale * kSeluAlpha) * std::expm1(v) : T(kSeluScale) * v;
    case Act::Softplus:
      return v > T(kSoftplusThreshold) ? v : std::log1p(std::exp(v));
    case Act::Swish:
    default:
      return v / (T(1) + std::exp(-v));
  }
}

// Gradient with respect to the pre-activation v, given the gradient g of the activation's
// output.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T act_backward(Act act, T g, T v, T alpha) {
  switch (act) {
    case Act::Linear:
      return g;
    case Act::Relu:
      return v <= T(0) ? T(0) : g;
    case Act::Lrelu:
      return v > T(0) ? g : g * alpha;
    case Act::Tanh: {
      const T t = std::tanh(v);
      return g * (T(1) - t * t);
    }
    case Act::Sigmoid: {
      const T s = T(1) / (T(1) + std::exp(-v));
      return g * (T(1) - s) * s;
    }
    case Act::Elu:
      // NaN takes the exponential branch (NaN gradient), as torch's vectorised elu_backward
      // does; its scalar fallback, used only for tiny tensors, would pass the gradient.
      return v > T(0) ? g : g * alpha * std::exp(v);
    case Act::Selu:
      return v > T(0) ? g * T(kSeluScale) : g * T(kSeluScale * kSeluAlpha) * std::exp(v);
    case Act::Softplus: {
      if (v > T(kSoftplusThreshold)) return g;
      const T z = std::exp(v);
      return g * z / (z + T(1));
    }
    case Act::Swish:
    default: {
      const T s = T(1) / (T(1) + std::exp(-v));
      return g * s * (T(1) + v * (T(1) - s));
    }
  }
}

// The activation, gain and clamp. kAct >= 0 fixes the activation at compile time (the switch
// folds away); kAct < 0 reads it from `act`.
template <typename acc_t, int kAct>
struct Epilogue {
  Act act;
  acc_t alpha, gain, clamp;
  bool has_clamp;

  C10_HOST_DEVICE C10_ALWAYS_INLINE Act which() const {
    return kAct >= 0 ? static_cast<Act>(kAct) : act;
  }

  C10_HOST_DEVICE C10_ALWAYS_INLINE acc_t forward(acc_t v) const {
    const acc_t y = act_value(which(), v, alpha) * gain;
    if (!has_clamp) return y;
    // Comparisons with NaN are false, so NaN passes through as torch.clamp does.
    return y < -clamp ? -clamp : (y > clamp ? clamp : y);
  }

  C10_HOST_DEVICE C10_ALWAYS_INLINE acc_t backward(acc_t dy, acc_t v) const {
    acc_t g = dy;
    if (has_clamp) {
      // torch.clamp's backward passes the gradient where min <= y <= max (false for NaN).
      const acc_t y = act_value(which(), v, alpha) * gain;
      g = (y >= -clamp && y <= clamp) ? g : acc_t(0);
    }
    return act_backward(which(), g * gain, v, alpha);
  }
};

// Calls fn(Epilogue<acc_t, kAct>). linear and lrelu (the ones StyleGAN uses) always get their
// own compile-time kAct; the others too when kEveryAct (the CPU kernels: a vectorised loop per
// activation), else share kAct = -1 (the CUDA kernels: a warp-uniform switch per element costs
// a memory-bound kernel nothing, and compiles 7 fewer sets of kernels).
template <typename acc_t, bool kEveryAct, typename Fn>
void with_epilogue(Act act, double alpha, double gain, std::optional<double> clamp, Fn&& fn) {
  const acc_t c = clamp.has_value() ? acc_t(*clamp) : acc_t(0);
  const bool has_clamp = clamp.has_value();
  auto run = [&](auto fixed) {
    return fn(Epilogue<acc_t, decltype(fixed)::value>{act, acc_t(alpha), acc_t(gain), c,
                                                       has_clamp});
  };
  using std::integral_constant;
#define STYLEGAN_FAST_ACT_CASE(NAME) \
  case Act::NAME:                    \
    return run(integral_constant<int, int(Act::NAME)>{});
  switch (act) {
    STYLEGAN_FAST_ACT_CASE(Linear)
    STYLEGAN_FAST_ACT_CASE(Lrelu)
    default:
      break;
  }
  if constexpr (kEveryAct) {
    switch (act) {
      STYLEGAN_FAST_ACT_CASE(Relu)
      STYLEGAN_FAST_ACT_CASE(Tanh)
      STYLEGAN_FAST_ACT_CASE(Sigmoid)
      STYLEGAN_FAST_ACT_CASE(Elu)
      STYLEGAN_FAST_ACT_CASE(Selu)
      STYLEGAN_FAST_ACT_CASE(Softplus)
      STYLEGAN_FAST_ACT_CASE(Swish)
      default:
        break;
    }
  } else {
    run(integral_constant<int, -1>{});
  }
#undef STYLEGAN_FAST_ACT_CASE
}

// How the bias axis `dim` sits in the dense buffer (contiguous or channels_last) the kernels
// walk, viewed as [numel / (channels * inner), channels, inner]: for any dense layout the
// channel of flat index i is (i / inner) % channels, with inner = stride(dim) (the elements in
// a row that share a channel). inner == 1: rows of `channels` values, channel fastest
// (channels_last with dim == 1, or [N, C]).
struct Geometry {
  int64_t numel = 0, channels = 1, inner = 1;
};

inline Geometry describe(const at::Tensor& dense, bool has_bias, int64_t dim) {
  Geometry g;
  g.numel = dense.numel();
  if (has_bias) {
    g.channels = dense.size(dim);
    g.inner = dense.stride(dim);
  }
  return g;
}

inline void check_inputs(const Label& label, const at::Tensor& x,
                         const std::optional<at::Tensor>& b, int64_t dim) {
  check_device_and_dtype(label, x);
  if (b.has_value()) {
    TORCH_CHECK(dim >= 0 && dim < x.dim(), label, ": dim ", dim, " is out of range for ",
                x.dim(), "-D x");
    TORCH_CHECK(b->dim() == 1 && b->size(0) == x.size(dim), label, ": b must have shape [",
                x.size(dim), "] (x.shape[dim]), got ", b->sizes());
    check_like_x(label, *b, x, "b");
  }
}

// The backward's dy and request; returns db: [C] (zeros when x is empty), or [0] when not
// requested.
inline at::Tensor check_backward_and_new_db(const Label& label, const at::Tensor& dy,
                                            const at::Tensor& x,
                                            const std::optional<at::Tensor>& b, int64_t dim,
                                            bool compute_db) {
  check_like_x(label, dy, x, "dy");
  TORCH_CHECK(dy.sizes() == x.sizes(), label, ": dy must have x's shape ", x.sizes(), ", got ",
              dy.sizes());
  TORCH_CHECK(!compute_db || b.has_value(), label, ": compute_db needs b");
  if (!compute_db) return at::empty({0}, x.options());
  at::Tensor db = new_output({x.size(dim)}, x.options());
  if (x.numel() == 0) db.zero_();  // sums over nothing
  return db;
}

// bias_act_fwd's and bias_act_bwd's arguments, checked (the activation parsed), as each
// backend's kernels take them.
struct ForwardArgs {
  const at::Tensor& x;
  const std::optional<at::Tensor>& b;
  int64_t dim;
  Act act;
  double alpha, gain;
  std::optional<double> clamp;
};
struct BackwardArgs {
  const at::Tensor& dy;
  ForwardArgs forward;  // x, b and the activation
  bool compute_db;
};

// (dx, db).
using BackwardOutputs = std::tuple<at::Tensor, at::Tensor>;

// The functions a backend registers (bias_act.cpp for CPU, bias_act_cuda.cu for CUDA), with the
// op schema's parameters written once: the checks above, their messages naming kLabel, then
// the backend's forward(const ForwardArgs&) or backward(const BackwardArgs&, db) with db from
// check_backward_and_new_db.
template <const Label& kLabel, auto forward, auto backward>
struct EntryPoints {
  static at::Tensor fwd(const at::Tensor& x, const std::optional<at::Tensor>& b, int64_t dim,
                        c10::string_view act, double alpha, double gain,
                        std::optional<double> clamp) {
    check_inputs(kLabel, x, b, dim);
    return forward(ForwardArgs{x, b, dim, parse_act(act, kLabel), alpha, gain, clamp});
  }

  static BackwardOutputs bwd(const at::Tensor& dy, const at::Tensor& x,
                             const std::optional<at::Tensor>& b, int64_t dim,
                             c10::string_view act, double alpha, double gain,
                             std::optional<double> clamp, bool compute_db) {
    check_inputs(kLabel, x, b, dim);
    at::Tensor db = check_backward_and_new_db(kLabel, dy, x, b, dim, compute_db);
    const Act a = parse_act(act, kLabel);
    return backward(BackwardArgs{dy, {x, b, dim, a, alpha, gain, clamp}, compute_db}, db);
  }
};

}  // namespace bias_act
}  // namespace stylegan_fast
