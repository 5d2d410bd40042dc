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

adain::Outputs forward(const adain::ForwardArgs& a) {
  return plane_norm_forward(kLabel, a.x, std::nullopt, std::nullopt, std::nullopt, a.scale, a.bias,
                            1.0, 1.0, a.eps);
}

adain::Outputs backward(const adain::BackwardArgs& a) {
  // layer_epilogue's gradients of (x, scale, style_bias).
  const auto grads = plane_norm_backward(
      kLabel, a.dy, a.x, std::nullopt, std::nullopt, std::nullopt, a.scale, a.mean, a.rstd, 1.0,
      1.0, {a.output_mask[0], false, false, false, a.output_mask[1], a.output_mask[2]});
  return {grads[0], grads[4], grads[5]};
}

using Cuda = adain::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(adain, CUDA, Cuda::fwd, Cuda::bwd)

}  // namespace stylegan_fast
