// CUDA kernels of stylegan_fast::layer_epilogue_fwd / layer_epilogue_bwd: the plane
// normalisation engine (plane_norm_cuda.cuh) with the noise + bias + leaky ReLU prologue, after
// the checks of layer_epilogue.h (shared with the CPU kernels, layer_epilogue.cpp).

#include "layer_epilogue.h"
#include "registration.h"
#include "plane_norm_cuda.cuh"

namespace stylegan_fast {
namespace {

constexpr Label kLabel{"layer_epilogue", kCudaBackend};

layer_epilogue::ForwardOutputs forward(const layer_epilogue::ForwardArgs& a) {
  const layer_epilogue::Inputs& in = a.in;
  return plane_norm_forward(kLabel, in.x, in.noise, in.noise_strength, in.bias, in.scale,
                            a.style_bias, a.alpha, a.gain, a.eps);
}

layer_epilogue::BackwardOutputs backward(const layer_epilogue::BackwardArgs& a) {
  const layer_epilogue::Inputs& in = a.in;
  const auto [dx, dnoise, dstrength, dbias, dscale, dstyle_bias] =
      plane_norm_backward(kLabel, a.dy, in.x, in.noise, in.noise_strength, in.bias, in.scale,
                          a.mean, a.rstd, a.alpha, a.gain, a.output_mask);
  return {dx, dnoise, dstrength, dbias, dscale, dstyle_bias};
}

using Cuda = layer_epilogue::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(layer_epilogue, CUDA, Cuda::fwd, Cuda::bwd)

}  // namespace stylegan_fast
