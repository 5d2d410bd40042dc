// adain's argument checks and entry points, shared by its CPU kernels (adain.cpp) and its CUDA
// kernels (adain_cuda.cu). The math is plane_norm.h's (the op is the plane normalisation with the
// identity prologue; adain's (scale, bias) are the style affine's (scale, style_bias)).
#pragma once

#include <array>
#include <tuple>

#include "plane_norm.h"

namespace stylegan_fast {
namespace adain {

// t (called `name`) is [N, C] of x's planes, on x's device, of dtype `dtype`.
inline void check_plane_tensor(const Label& label, const at::Tensor& t, const at::Tensor& x,
                               const char* name, at::ScalarType dtype) {
  TORCH_CHECK(t.dim() == 2 && t.size(0) == x.size(0) && t.size(1) == x.size(1), label, ": ",
              name, " must have shape [N, C] = [", x.size(0), ", ", x.size(1), "], got ",
              t.sizes());
  TORCH_CHECK(t.device() == x.device(), label, ": ", name, " is on ", t.device(),
              " but x is on ", x.device());
  TORCH_CHECK(t.scalar_type() == dtype, label, ": ", name, " must be a ", dtype,
              " tensor, got ", t.scalar_type());
}

inline void check_x(const Label& label, const at::Tensor& x) {
  check_device_and_dtype(label, x);
  TORCH_CHECK(x.dim() == 4, label, ": x must have shape [N, C, H, W], got ", x.sizes());
}

// x [N, C, H, W]; scale and bias [N, C] with x's device and dtype.
inline void check_inputs(const Label& label, const at::Tensor& x, const at::Tensor& scale,
                         const at::Tensor& bias) {
  check_x(label, x);
  check_plane_tensor(label, scale, x, "scale", x.scalar_type());
  check_plane_tensor(label, bias, x, "bias", x.scalar_type());
}

// The backward's inputs: x and scale as forward, dy like x, mean and rstd [N, C] in the
// accumulation type.
inline void check_backward(const Label& label, const at::Tensor& dy, const at::Tensor& x,
                           const at::Tensor& scale, const at::Tensor& mean,
                           const at::Tensor& rstd) {
  check_x(label, x);
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.scalar_type() == x.scalar_type() &&
                  dy.device() == x.device(),
              label, ": dy must match x in shape, dtype and device: got ", dy.sizes(), " ",
              dy.scalar_type(), " on ", dy.device(), " for x ", x.sizes(), " ",
              x.scalar_type(), " on ", x.device());
  check_plane_tensor(label, scale, x, "scale", x.scalar_type());
  check_plane_tensor(label, mean, x, "mean", accumulation_type(x));
  check_plane_tensor(label, rstd, x, "rstd", accumulation_type(x));
}

// adain_fwd's and adain_bwd's arguments, checked, as each backend's kernels take them.
struct ForwardArgs {
  const at::Tensor& x;
  const at::Tensor& scale;
  const at::Tensor& bias;
  double eps;
};
struct BackwardArgs {
  const at::Tensor& dy;
  const at::Tensor& x;
  const at::Tensor& scale;
  const at::Tensor& mean;
  const at::Tensor& rstd;
  std::array<bool, 3> output_mask;
};

// (y, mean, rstd) forward, (dx, dscale, dbias) backward.
using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// The functions a backend registers (adain.cpp for CPU, adain_cuda.cu for CUDA), with the op
// schema's parameters written once: the checks above, their messages naming kLabel, then the
// backend's forward(const ForwardArgs&) or backward(const BackwardArgs&).
template <const Label& kLabel, auto forward, auto backward>
struct EntryPoints {
  static Outputs fwd(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& bias,
                     double eps) {
    check_inputs(kLabel, x, scale, bias);
    return forward(ForwardArgs{x, scale, bias, eps});
  }

  static Outputs bwd(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& scale,
                     const at::Tensor& mean, const at::Tensor& rstd,
                     std::array<bool, 3> output_mask) {
    check_backward(kLabel, dy, x, scale, mean, rstd);
    return backward(BackwardArgs{dy, x, scale, mean, rstd, output_mask});
  }
};

}  // namespace adain
}  // namespace stylegan_fast
