// layer_epilogue's argument checks and entry points, shared by its CPU kernels
// (layer_epilogue.cpp) and its CUDA kernels (layer_epilogue_cuda.cu). The math is plane_norm.h's
// (the op is the plane normalisation with the noise + bias + leaky ReLU prologue).
#pragma once

#include <array>
#include <optional>
#include <tuple>

#include "plane_norm.h"

namespace stylegan_fast {
namespace layer_epilogue {

// t (called `name`) has x's device and dtype and shape `shape`.
inline void check_like_x(const Label& label, const at::Tensor& t, const at::Tensor& x,
                         const char* name, at::IntArrayRef shape) {
  stylegan_fast::check_like_x(label, t, x, name);
  TORCH_CHECK(t.sizes() == shape, label, ": ", name, " must have shape ", shape, ", got ",
              t.sizes());
}

// The inputs both directions take: x [N, C, H, W]; noise [N or 1, 1, H, W] and noise_strength
// [C], both or neither; bias [C] or none; scale [N, C]; all with x's device and dtype.
inline void check_inputs(const Label& label, const at::Tensor& x,
                         const std::optional<at::Tensor>& noise,
                         const std::optional<at::Tensor>& noise_strength,
                         const std::optional<at::Tensor>& bias, const at::Tensor& scale) {
  check_device_and_dtype(label, x);
  TORCH_CHECK(x.dim() == 4, label, ": x must be [N, C, H, W], got ", x.sizes());
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(noise.has_value() == noise_strength.has_value(), label,
              ": noise and noise_strength must be given together");
  if (noise.has_value()) {
    TORCH_CHECK(noise->dim() == 4 && (noise->size(0) == N || noise->size(0) == 1), label,
                ": noise must be [N, 1, H, W] or [1, 1, H, W], got ", noise->sizes());
    check_like_x(label, *noise, x, "noise", {noise->size(0), 1, H, W});
    check_like_x(label, *noise_strength, x, "noise_strength", {C});
  }
  if (bias.has_value()) check_like_x(label, *bias, x, "bias", {C});
  check_like_x(label, scale, x, "scale", {N, C});
}

// The backward's extra inputs: dy like x; mean and rstd [N, C] in the accumulation type; and
// gradients requested only of inputs that were given.
inline void check_backward(const Label& label, const at::Tensor& dy, const at::Tensor& x,
                           const std::optional<at::Tensor>& noise,
                           const std::optional<at::Tensor>& bias, const at::Tensor& mean,
                           const at::Tensor& rstd, const std::array<bool, 6>& output_mask) {
  check_like_x(label, dy, x, "dy", x.sizes());
  const at::ScalarType stats_type = accumulation_type(x);
  for (const auto& [stats, name] : {std::pair{&mean, "mean"}, std::pair{&rstd, "rstd"}}) {
    TORCH_CHECK(stats->device() == x.device() && stats->scalar_type() == stats_type, label, ": ",
                name, " must be ", stats_type, " on ", x.device(), ", got ",
                stats->scalar_type(), " on ", stats->device());
    TORCH_CHECK(stats->sizes() == at::IntArrayRef({x.size(0), x.size(1)}), label, ": ", name,
                " must have shape [N, C], got ", stats->sizes());
  }
  TORCH_CHECK(!(output_mask[1] || output_mask[2]) || noise.has_value(), label,
              ": dnoise and dnoise_strength need noise and noise_strength");
  TORCH_CHECK(!output_mask[3] || bias.has_value(), label, ": dbias needs bias");
}

// layer_epilogue_fwd's and layer_epilogue_bwd's arguments, checked, as each backend's kernels
// take them. Inputs: those both directions take (check_inputs).
struct Inputs {
  const at::Tensor& x;
  const std::optional<at::Tensor>& noise;
  const std::optional<at::Tensor>& noise_strength;
  const std::optional<at::Tensor>& bias;
  const at::Tensor& scale;
};
struct ForwardArgs {
  Inputs in;
  const at::Tensor& style_bias;
  double alpha, gain, eps;
};
struct BackwardArgs {
  const at::Tensor& dy;
  Inputs in;
  const at::Tensor& mean;
  const at::Tensor& rstd;
  double alpha, gain;
  std::array<bool, 6> output_mask;
};

// (y, mean, rstd).
using ForwardOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
// The gradients of (x, noise, noise_strength, bias, scale, style_bias).
using BackwardOutputs =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// The functions a backend registers (layer_epilogue.cpp for CPU, layer_epilogue_cuda.cu for
// CUDA), with the op schema's parameters written once: the checks above, their messages naming
// kLabel, then the backend's forward(const ForwardArgs&) or backward(const BackwardArgs&).
template <const Label& kLabel, auto forward, auto backward>
struct EntryPoints {
  static ForwardOutputs fwd(const at::Tensor& x, const std::optional<at::Tensor>& noise,
                            const std::optional<at::Tensor>& noise_strength,
                            const std::optional<at::Tensor>& bias, const at::Tensor& scale,
                            const at::Tensor& style_bias, double alpha, double gain, double eps) {
    check_inputs(kLabel, x, noise, noise_strength, bias, scale);
    check_like_x(kLabel, style_bias, x, "style_bias", scale.sizes());
    return forward(
        ForwardArgs{{x, noise, noise_strength, bias, scale}, style_bias, alpha, gain, eps});
  }

  static BackwardOutputs bwd(const at::Tensor& dy, const at::Tensor& x,
                             const std::optional<at::Tensor>& noise,
                             const std::optional<at::Tensor>& noise_strength,
                             const std::optional<at::Tensor>& bias, const at::Tensor& scale,
                             const at::Tensor& mean, const at::Tensor& rstd, double alpha,
                             double gain, std::array<bool, 6> output_mask) {
    check_inputs(kLabel, x, noise, noise_strength, bias, scale);
    check_backward(kLabel, dy, x, noise, bias, mean, rstd, output_mask);
    return backward(BackwardArgs{dy, {x, noise, noise_strength, bias, scale}, mean, rstd, alpha,
                                 gain, output_mask});
  }
};

}  // namespace layer_epilogue
}  // namespace stylegan_fast
