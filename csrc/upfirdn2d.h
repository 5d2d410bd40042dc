// upfirdn2d's index math and argument checks, shared by its CPU kernels (upfirdn2d.cpp) and CUDA
// kernels (upfirdn2d_cuda.cu).
//
// Along one axis, with g the cross-correlation taps (f reversed unless flip_filter):
//   y[m] = sum_k x[k] * g[k * up - m * down + pad0],   0 <= k < in,  0 <= tap < taps.
// Tap j of output m meets upsampled sample base + j, base = m * down - pad0: a real input,
// (base + j) / up, when base + j is a multiple of up. So output m's taps that touch the input
// are first_tap(base, up), then every up-th, meeting consecutive inputs; the inserted zeros and
// the padding are never multiplied.
#pragma once

#include "common.h"

namespace stylegan_fast {
namespace upfirdn2d {

// floor(a / b) and a - floor(a / b) * b for b > 0 and any sign of a (C++'s / truncates). A
// template: the CUDA kernels use it on 32-bit ints per output (their host checks keep every
// coordinate times a factor below 2^30), where a 64-bit division is a call into a slow routine
// on the GPU (12 of them in generic_kernel<double> kept a register in local memory: 4 B of
// spill, ptxas -v, sm_90).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE constexpr T floor_div(T a, T b) {
  const T q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE constexpr T floor_mod(T a, T b) {
  return a - floor_div(a, b) * b;
}

// The first tap j >= lo that meets a real input sample for an output whose tap 0 meets
// upsampled sample `base`.
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE constexpr T first_tap(T base, T up, T lo = T(0)) {
  return lo + floor_mod<T>(-(base + lo), up);
}

// Where cross-correlation tap j of a filter of `taps` taps is in f along one axis: f is
// reversed (a convolution) unless flip. `taps` by reference: the CUDA kernels pass a kernel
// parameter, which then is loaded only where the branch reads it (taken by value, the load
// moved and the PTX of generic_kernel changed).
template <typename T>
C10_HOST_DEVICE C10_ALWAYS_INLINE constexpr T filter_index(T j, const T& taps, bool flip) {
  return flip ? j : taps - 1 - j;
}

// Output samples along an axis of `in` samples (may be < 1: the checks reject that).
C10_HOST_DEVICE constexpr int64_t output_size(int64_t in, int64_t up, int64_t down,
                                              int64_t pad0, int64_t pad1, int64_t taps) {
  return floor_div<int64_t>(in * up + pad0 + pad1 - taps, down) + 1;
}

// x [N, C, H, W] and f [ft] (separable) or [fh, fw] float32 on x's device; up and down >= 1.
inline void check_inputs(const Label& label, const at::Tensor& x, const at::Tensor& f,
                         int64_t upx, int64_t upy, int64_t downx, int64_t downy) {
  check_device_and_dtype(label, x);
  TORCH_CHECK(f.device() == x.device(), label, ": f is on ", f.device(), " but x is on ",
              x.device());
  TORCH_CHECK(x.dim() == 4, label, ": x must have shape [N, C, H, W], got ", x.sizes());
  TORCH_CHECK(f.dim() == 1 || f.dim() == 2, label,
              ": f must have shape [ft] (separable) or [fh, fw], got ", f.sizes());
  TORCH_CHECK(f.numel() > 0, label, ": f must have at least one tap");
  TORCH_CHECK(f.scalar_type() == at::kFloat, label, ": f must be float32, got ",
              f.scalar_type());
  TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, label,
              ": up and down must be >= 1, got up=[", upx, ", ", upy, "], down=[", downx, ", ",
              downy, "]");
}

struct OutputSize {
  int64_t h, w;
};

// The output's H and W, which must be at least one sample each (after check_inputs).
inline OutputSize checked_output_size(const Label& label, const at::Tensor& x,
                                      const at::Tensor& f, int64_t upx, int64_t upy,
                                      int64_t downx, int64_t downy, int64_t padx0, int64_t padx1,
                                      int64_t pady0, int64_t pady1) {
  const OutputSize out{output_size(x.size(2), upy, downy, pady0, pady1, f.size(0)),
                       output_size(x.size(3), upx, downx, padx0, padx1, f.size(-1))};
  TORCH_CHECK(out.h >= 1 && out.w >= 1, label, ": the output would be ", out.h, "x", out.w,
              " (H x W); it needs at least one sample along each axis");
  return out;
}

}  // namespace upfirdn2d
}  // namespace stylegan_fast
