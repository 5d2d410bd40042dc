// noise_injection's element math, argument checks, backward outputs and entry points, shared by
// its CPU kernels (noise_injection.cpp) and CUDA kernels (noise_injection_cuda.cu):
//
//   y         = x + strength[c] * noise[n', 0, h, w]     (n' = n, or 0 for batch-shared noise)
//   dnoise    = sum over c (and over n when noise is shared) of dy * strength[c]
//   dstrength = sum over n, h, w of dy * noise[n', 0, h, w]
//
// layer_epilogue's prologue injects noise with the same function (plane_norm.h).
#pragma once

#include <tuple>

#include "common.h"

namespace stylegan_fast {
namespace noise_injection {

// x + strength * noise in acc_t, in the reference's order (one rounding of the product, then
// of the sum, unless the compiler contracts them into one FMA on both sides alike).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE T inject(T x, T strength, T noise) {
  return x + strength * noise;
}

// x (called x_name: "x" forward, "dy" backward) is [N, C, H, W], noise [N or 1, 1, H, W],
// strength [C], all on x's device with x's dtype.
inline void check_inputs(const Label& label, const at::Tensor& x, const at::Tensor& noise,
                         const at::Tensor& strength, const char* x_name) {
  check_device_and_dtype(label, x, x_name);
  TORCH_CHECK(x.dim() == 4, label, ": ", x_name, " must have shape [N, C, H, W], got ",
              x.sizes());
  TORCH_CHECK(noise.dim() == 4 && noise.size(1) == 1 &&
                  (noise.size(0) == x.size(0) || noise.size(0) == 1) &&
                  noise.size(2) == x.size(2) && noise.size(3) == x.size(3),
              label, ": noise must have shape [N, 1, H, W] or [1, 1, H, W] for ", x_name,
              " of shape ", x.sizes(), ", got ", noise.sizes());
  TORCH_CHECK(strength.dim() == 1 && strength.size(0) == x.size(1), label,
              ": strength must have shape [C] = [", x.size(1), "], got ", strength.sizes());
  for (const auto& [t, name] : {std::pair{&noise, "noise"}, std::pair{&strength, "strength"}}) {
    TORCH_CHECK(t->device() == x.device(), label, ": ", name, " is on ", t->device(), " but ",
                x_name, " is on ", x.device());
    TORCH_CHECK(t->scalar_type() == x.scalar_type(), label, ": ", name,
                " must have the dtype of ", x_name, " (", x.scalar_type(), "), got ",
                t->scalar_type());
  }
}

// The backward's outputs: dnoise like noise and dstrength [C] where requested, else [0].
// Returns false, with the requested outputs zeroed, when there is nothing to compute: sums
// over no elements (noise may still have pixels when N or C is zero), or nothing requested.
inline bool new_grads(const at::Tensor& dy, const at::Tensor& noise, const at::Tensor& strength,
                      bool compute_dnoise, bool compute_dstrength, at::Tensor& dnoise,
                      at::Tensor& dstrength) {
  dnoise = compute_dnoise ? new_output(noise.sizes(), noise.options())
                          : at::empty({0}, noise.options());
  dstrength = compute_dstrength ? new_output({dy.size(1)}, strength.options())
                                : at::empty({0}, strength.options());
  if (dy.numel() > 0 && (compute_dnoise || compute_dstrength)) return true;
  dnoise.zero_();
  dstrength.zero_();
  return false;
}

// noise_injection_fwd's and noise_injection_bwd's arguments, checked, as each backend's
// kernels take them.
struct ForwardArgs {
  const at::Tensor& x;
  const at::Tensor& noise;
  const at::Tensor& strength;
};
struct BackwardArgs {
  const at::Tensor& dy;
  const at::Tensor& noise;
  const at::Tensor& strength;
  bool compute_dnoise, compute_dstrength;
};

// (dnoise, dstrength).
using BackwardOutputs = std::tuple<at::Tensor, at::Tensor>;

// The functions a backend registers (noise_injection.cpp for CPU, noise_injection_cuda.cu for
// CUDA), with the op schema's parameters written once: check_inputs, its messages naming
// kLabel, then the backend's forward(const ForwardArgs&) or backward(const BackwardArgs&).
template <const Label& kLabel, auto forward, auto backward>
struct EntryPoints {
  static at::Tensor fwd(const at::Tensor& x, const at::Tensor& noise, const at::Tensor& strength) {
    check_inputs(kLabel, x, noise, strength, "x");
    return forward(ForwardArgs{x, noise, strength});
  }

  static BackwardOutputs bwd(const at::Tensor& dy, const at::Tensor& noise,
                             const at::Tensor& strength, bool compute_dnoise,
                             bool compute_dstrength) {
    check_inputs(kLabel, dy, noise, strength, "dy");
    return backward(BackwardArgs{dy, noise, strength, compute_dnoise, compute_dstrength});
  }
};

}  // namespace noise_injection
}  // namespace stylegan_fast
