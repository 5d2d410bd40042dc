// CUDA kernels of stylegan_fast::adain_fwd / adain_bwd: the plane normalisation engine
// (plane_norm_cuda.cuh) without noise and bias and with alpha = gain = 1, so that the
// activation is the identity exactly (v * 1), u = x, and adain's (scale, bias) are the style
// affine's (scale, style_bias); after the checks of adain.h (shared with the CPU kernels,
// adain.cpp). The same kernels and bytes as layer_epilogue's: read x, write y; read dy and x,
// write dx.

#include "adain.h"
#include "registration.h"
#include "plane_norm_cuda.cuh"

namespace stylegan_fast {
namespace {

constexpr Label kLabel{"adain", kCudaBackend};

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_fwd_cuda(const at::Tensor& x,
                                                              const at::Tensor& scale,
                                                              const at::Tensor& bias, double eps) {
  adain::check_inputs(kLabel, x, scale, bias);
  return plane_norm_forward(kLabel, x, std::nullopt, std::nullopt, std::nullopt, scale, bias,
                            1.0, 1.0, eps);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_bwd_cuda(const at::Tensor& dy,
                                                              const at::Tensor& x,
                                                              const at::Tensor& scale,
                                                              const at::Tensor& mean,
                                                              const at::Tensor& rstd,
                                                              std::array<bool, 3> output_mask) {
  adain::check_backward(kLabel, dy, x, scale, mean, rstd);
  // layer_epilogue's gradients of (x, scale, style_bias).
  const auto grads = plane_norm_backward(
      kLabel, dy, x, std::nullopt, std::nullopt, std::nullopt, scale, mean, rstd, 1.0, 1.0,
      {output_mask[0], false, false, false, output_mask[1], output_mask[2]});
  return {grads[0], grads[4], grads[5]};
}

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(adain, CUDA, adain_fwd_cuda, adain_bwd_cuda)

}  // namespace stylegan_fast
