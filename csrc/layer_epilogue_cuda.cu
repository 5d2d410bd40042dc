// CUDA kernels of stylegan_fast::layer_epilogue_fwd / layer_epilogue_bwd: the plane
// normalisation engine (plane_norm_cuda.cuh) with the noise + bias + leaky ReLU prologue, after
// the checks of layer_epilogue.h (shared with the CPU kernels, layer_epilogue.cpp).

#include "layer_epilogue.h"
#include "registration.h"
#include "plane_norm_cuda.cuh"

namespace stylegan_fast {
namespace {

constexpr Label kLabel{"layer_epilogue", kCudaBackend};

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_epilogue_fwd_cuda(
    const at::Tensor& x, const std::optional<at::Tensor>& noise,
    const std::optional<at::Tensor>& noise_strength, const std::optional<at::Tensor>& bias,
    const at::Tensor& scale, const at::Tensor& style_bias, double alpha, double gain,
    double eps) {
  layer_epilogue::check_inputs(kLabel, x, noise, noise_strength, bias, scale);
  layer_epilogue::check_like_x(kLabel, style_bias, x, "style_bias", scale.sizes());
  return plane_norm_forward(kLabel, x, noise, noise_strength, bias, scale, style_bias, alpha,
                            gain, eps);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
layer_epilogue_bwd_cuda(const at::Tensor& dy, const at::Tensor& x,
                        const std::optional<at::Tensor>& noise,
                        const std::optional<at::Tensor>& noise_strength,
                        const std::optional<at::Tensor>& bias, const at::Tensor& scale,
                        const at::Tensor& mean, const at::Tensor& rstd, double alpha, double gain,
                        std::array<bool, 6> output_mask) {
  layer_epilogue::check_inputs(kLabel, x, noise, noise_strength, bias, scale);
  layer_epilogue::check_backward(kLabel, dy, x, noise, bias, mean, rstd, output_mask);
  const auto [dx, dnoise, dstrength, dbias, dscale, dstyle_bias] = plane_norm_backward(
      kLabel, dy, x, noise, noise_strength, bias, scale, mean, rstd, alpha, gain, output_mask);
  return {dx, dnoise, dstrength, dbias, dscale, dstyle_bias};
}

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(layer_epilogue, CUDA, layer_epilogue_fwd_cuda, layer_epilogue_bwd_cuda)

}  // namespace stylegan_fast
