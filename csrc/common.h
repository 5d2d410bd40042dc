// Shared helpers for the CPU kernels: output allocation, layouts, parallel chunking.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/irange.h>

#include <cstdlib>
#include <limits>

namespace stylegan_fast {

// STYLEGAN_FAST_POISON_OUTPUTS=1 fills every output with NaN before a kernel writes it, so a
// parity test catches any element the kernel forgot to write. Read once per process.
inline bool poison_outputs() {
  static const bool enabled = [] {
    const char* v = std::getenv("STYLEGAN_FAST_POISON_OUTPUTS");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return enabled;
}

inline at::Tensor poisoned(at::Tensor t) {
  if (poison_outputs() && t.is_floating_point()) {
    t.fill_(std::numeric_limits<double>::quiet_NaN());
  }
  return t;
}

// The layout every kernel works in and returns: channels_last stays channels_last, everything
// else (contiguous, sliced, transposed) is computed and returned as contiguous NCHW. The fake
// functions in stylegan_fast/_library.py apply the same rule.
inline at::MemoryFormat kernel_memory_format(const at::Tensor& x) {
  if (x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::MemoryFormat::ChannelsLast;
  }
  return at::MemoryFormat::Contiguous;
}

// An uninitialised (or poisoned) tensor shaped like `like`, in memory format `format`.
inline at::Tensor new_output(const at::Tensor& like, at::MemoryFormat format) {
  return poisoned(at::empty(like.sizes(), like.options().memory_format(format)));
}

inline at::Tensor new_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return poisoned(at::empty(sizes, options));
}

// Elements per parallel task: below this a task is not worth a thread.
constexpr int64_t kGrain = 32768;

// Fixed-size chunks for reductions: the chunk boundaries do not depend on the thread count,
// so the summation order, and so the result, is the same on every run and machine.
constexpr int64_t kReduceChunk = 4096;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace stylegan_fast
