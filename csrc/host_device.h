// Plain C++ that runs on both sides: included by the CPU kernels (<op>.cpp, through common.h),
// the CUDA kernels (<op>_cuda.cu) and tests/ops/cuda_plans_check.cpp. Functions marked
// C10_HOST_DEVICE are __host__ __device__ under nvcc and ordinary functions for a host compiler,
// so one definition serves the CPU kernels, the GPU kernels and the g++-built plan checks.
//
// One macro family: c10's (C10_HOST_DEVICE, C10_ALWAYS_INLINE), the one ATen's own kernels use.
// c10/macros/Macros.h is header-only, so the plan checks still build with g++ and nothing but
// torch's include directory (tests/ops/test_cuda_plans.py passes it): no ATen, no CUDA headers,
// no library to link.
#pragma once

#include <c10/macros/Macros.h>

#include <cstdint>

// `#pragma unroll` for nvcc; nothing for a host compiler, which would warn about an unknown
// pragma (-Wall). c10 has no macro for it.
#ifdef __CUDACC__
#define SGF_UNROLL _Pragma("unroll")
#else
#define SGF_UNROLL
#endif

namespace stylegan_fast {

// std::min / std::max are host functions; these run on both sides.
template <typename T>
C10_HOST_DEVICE constexpr T min_of(T a, T b) {
  return b < a ? b : a;
}
template <typename T>
C10_HOST_DEVICE constexpr T max_of(T a, T b) {
  return a < b ? b : a;
}
template <typename T>
C10_HOST_DEVICE constexpr T clamp_to(T v, T lo, T hi) {
  return min_of(max_of(v, lo), hi);
}

// ceil(a / b) for a >= 0, b > 0.
C10_HOST_DEVICE constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The smallest power of two >= v (1 for v <= 1).
C10_HOST_DEVICE constexpr int64_t next_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p *= 2;
  return p;
}

namespace plans {

// CUDA's launch limits.
constexpr int64_t kMaxGridX = 2147483647;  // 2^31 - 1
constexpr int64_t kMaxGridY = 65535;

}  // namespace plans
}  // namespace stylegan_fast
