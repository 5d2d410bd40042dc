// The per-plane instance normalisation with a style affine that adain and layer_epilogue share,
// on both backends: its element math (C10_HOST_DEVICE, so the CPU tests exercise the functions
// the GPU runs) and the outputs both ops' kernels allocate. For x: [N, C, H, W] and each plane
// (n, c) of HW values:
//
//   v = x + noise_strength[c] * noise[n, hw] + bias[c]   (layer_epilogue; adain: v = x)
//   u = v * lrelu_slope(v)                               (layer_epilogue; adain: u = v)
//   mean = mean_hw(u),  rstd = 1 / sqrt(mean_hw((u - mean)^2) + eps)
//   y = (u - mean) * (rstd * scale[n, c]) + style_bias[n, c]
//
// Backward, with u_hat = (u - mean) * rstd and g = dy * scale:
//   dscale = sum_hw dy * u_hat,  dstyle_bias = sum_hw dy,
//   du = rstd * (g - mean_hw(g) - u_hat * mean_hw(g * u_hat)),  dt = du * lrelu_slope(v),
//   dx = dt,  dbias = sum_{n,hw} dt,  dnoise_strength = sum_{n,hw} dt * noise,
//   dnoise = sum_c dt * noise_strength (and over n for noise shared by the batch).
//
// Kernels: layer_epilogue.cpp and adain.cpp on CPU; on CUDA one engine for both,
// plane_norm_cuda.cuh (the twin of the Triton engine stylegan_fast/ops/_plane_norm/),
// planned by plane_stats.h.
#pragma once

#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>

#include "common.h"
#include "noise_injection.h"

namespace stylegan_fast {
namespace plane_norm {

// layer_epilogue's prologue adds the noise as noise_injection does.
using noise_injection::inject;

// lrelu(v) * gain = v * lrelu_slope(v): one multiply by a selected factor (alpha_gain = alpha *
// gain), which the CPU compiler turns into a vector compare-and-blend (see layer_epilogue.cpp).
// NaN takes alpha_gain (NaN either way). The factors may be of another type than v (the CUDA
// kernels keep them as double kernel parameters): they are converted after the comparison, as
// the kernels did before this function (the same PTX).
template <typename T, typename Factor>
C10_HOST_DEVICE C10_ALWAYS_INLINE T lrelu_slope(T v, const Factor& gain,
                                                const Factor& alpha_gain) {
  return v > T(0) ? T(gain) : T(alpha_gain);
}

// u_hat.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T normalized(T u, T mean, T rstd) {
  return (u - mean) * rstd;
}

// y, with rstd_scale = rstd * scale[n, c] of u's plane.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T styled(T u, T mean, T rstd_scale, T style_bias) {
  return (u - mean) * rstd_scale + style_bias;
}

// 1 / sqrt(var + eps). Rounding can leave a variance computed from corrected sums slightly
// below zero (a constant plane); it counts as 0. NaN stays NaN (the comparison is false). eps
// may be a double kernel parameter, converted where it is added (as lrelu_slope's factors).
template <typename T, typename Eps>
C10_HOST_DEVICE C10_ALWAYS_INLINE T inverse_std(T var, const Eps& eps) {
  if (var < T(0)) var = T(0);
  return T(1) / std::sqrt(var + T(eps));
}

// du of one value (see the header): mean_g = mean_hw(dy * scale), mean_g_u_hat =
// mean_hw(dy * scale * u_hat) of its plane.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T normalization_grad(T dy, T scale, T u_hat, T rstd, T mean_g,
                                                       T mean_g_u_hat) {
  return rstd * (dy * scale - mean_g - u_hat * mean_g_u_hat);
}

// The prologue's optional inputs as the kernels read them (dense_input; [N or 1, 1, H, W] and
// [C] have one memory order in either format), undefined where not given.
struct Prologue {
  at::Tensor noise, noise_strength, bias;

  // Noise [N, 1, H, W] of a batch of N > 1, rather than one plane [1, 1, H, W] for every sample.
  bool noise_per_sample(int64_t N) const {
    return noise.defined() && noise.size(0) == N && N != 1;
  }
};

inline Prologue dense_prologue(const Backend& backend, const std::optional<at::Tensor>& noise,
                               const std::optional<at::Tensor>& noise_strength,
                               const std::optional<at::Tensor>& bias) {
  auto dense = [&](const std::optional<at::Tensor>& t) {
    return t.has_value() ? dense_input(backend, *t, at::MemoryFormat::Contiguous) : at::Tensor();
  };
  return {dense(noise), dense(noise_strength), dense(bias)};
}

// The forward's outputs: y like x (in `format`), mean and rstd [N, C] in the accumulation
// type. A plane of no values (H * W = 0) has the statistics of nothing, NaN, as the reference's
// mean over none; the kernels have nothing to do when x is empty.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> new_forward_outputs(
    const at::Tensor& x, at::MemoryFormat format) {
  at::Tensor y = new_output(x, format);
  const auto stats_options = x.options().dtype(accumulation_type(x));
  at::Tensor mean = new_output({x.size(0), x.size(1)}, stats_options);
  at::Tensor rstd = new_output({x.size(0), x.size(1)}, stats_options);
  if (x.numel() == 0 && mean.numel() > 0) {
    mean.fill_(std::numeric_limits<double>::quiet_NaN());
    rstd.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  return {y, mean, rstd};
}

// The gradients, in layer_epilogue_bwd's order, of (x, noise, noise_strength, bias, scale,
// style_bias): dx like x (in `format`), dnoise like noise, [C], [C], [N, C], [N, C]; [0]
// where output_mask is false (noise may be undefined then). adain's are dx, dscale and
// dstyle_bias.
inline std::array<at::Tensor, 6> new_grads(const at::Tensor& x, const at::Tensor& noise,
                                           at::MemoryFormat format,
                                           const std::array<bool, 6>& output_mask) {
  const int64_t N = x.size(0), C = x.size(1);
  auto requested = [&](int i, auto make) {
    return output_mask[i] ? make() : at::empty({0}, x.options());
  };
  return {requested(0, [&] { return new_output(x, format); }),
          requested(1, [&] { return new_output(noise.sizes(), x.options()); }),
          requested(2, [&] { return new_output({C}, x.options()); }),
          requested(3, [&] { return new_output({C}, x.options()); }),
          requested(4, [&] { return new_output({N, C}, x.options()); }),
          requested(5, [&] { return new_output({N, C}, x.options()); })};
}

}  // namespace plane_norm
}  // namespace stylegan_fast
