// Plain C++ shared by the CUDA kernels and their CPU-compiled tests: with nvcc the functions of
// the headers that include this one are __host__ __device__; with a host compiler they are
// ordinary inline functions, so tests/ops/test_cuda_plans.py can build the exact plan and
// merge math the kernels run with g++ and check it without a GPU. No ATen, no CUDA headers.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define SGF_HOST_DEVICE __host__ __device__
#define SGF_UNROLL _Pragma("unroll")
#else
#define SGF_HOST_DEVICE
#define SGF_UNROLL
#endif

namespace stylegan_fast {
namespace plans {

// std::min / std::max are host functions; these run on both sides.
template <typename T>
SGF_HOST_DEVICE constexpr T min_of(T a, T b) {
  return b < a ? b : a;
}
template <typename T>
SGF_HOST_DEVICE constexpr T max_of(T a, T b) {
  return a < b ? b : a;
}
template <typename T>
SGF_HOST_DEVICE constexpr T clamp_to(T v, T lo, T hi) {
  return min_of(max_of(v, lo), hi);
}

// ceil(a / b) for a >= 0, b > 0.
SGF_HOST_DEVICE constexpr int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }

constexpr int64_t next_pow2_of(int64_t v) {
  int64_t p = 1;
  while (p < v) p *= 2;
  return p;
}

// CUDA's launch limits.
constexpr int64_t kMaxGridX = 2147483647;  // 2^31 - 1
constexpr int64_t kMaxGridY = 65535;

}  // namespace plans
}  // namespace stylegan_fast
