// Host helpers shared by the CPU and the CUDA kernels: output allocation, layouts, argument
// checks and their messages, parallel chunking.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/irange.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <ostream>

#include "host_device.h"

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

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// For the CUDA kernels: a dense tensor whose data pointer is not 16-byte aligned (a view with an
// odd storage offset) is copied once, in the same memory format, so that every kernel can use
// 16-byte accesses on all of its operands with one index computation. Fresh allocations are
// always aligned.
inline at::Tensor aligned_dense(const at::Tensor& t, at::MemoryFormat format) {
  at::Tensor dense = t.contiguous(format);
  if (dense.numel() > 0 && !aligned16(dense.const_data_ptr())) {
    dense = dense.clone(format);
  }
  return dense;
}

// The dtype of acc_t (at::opmath_type) for x's: double for double, float for the rest. The
// statistics (mean, rstd) and every partial-sum buffer have it.
inline at::ScalarType accumulation_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// Elements per parallel task: below this a task is not worth a thread.
constexpr int64_t kGrain = 32768;

// Fixed-size chunks for reductions: the chunk boundaries do not depend on the thread count,
// so the summation order, and so the result, is the same on every run and machine.
constexpr int64_t kReduceChunk = 4096;

// ---------------------------------------------------------------------------------------------
// Argument checks. The CPU and CUDA kernels of an op run the same checks (in <op>.h), which
// differ only in the device they require and the backend their messages name.

// The kernels a check speaks for: `name` is the impl that reaches them ("cpp", "cuda").
struct Backend {
  const char* name;
  c10::DeviceType device;
};
inline constexpr Backend kCppBackend{"cpp", c10::DeviceType::CPU};
inline constexpr Backend kCudaBackend{"cuda", c10::DeviceType::CUDA};

// How every error message of an op's kernels starts: "<op> (<backend>)".
struct Label {
  const char* op;
  Backend backend;
};

inline std::ostream& operator<<(std::ostream& out, const Label& label) {
  return out << label.op << " (" << label.backend.name << ")";
}

// x (or `name`) is on the backend's device and holds floating-point values.
inline void check_device_and_dtype(const Label& label, const at::Tensor& x,
                                   const char* name = "x") {
  TORCH_CHECK(x.device().type() == label.backend.device, label, ": ", name, " must be a ",
              c10::DeviceTypeName(label.backend.device), " tensor, got ", x.device());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), label, ": ", name,
              " must be a floating-point tensor, got ", x.scalar_type());
}

// t as the kernels of `backend` read it: dense in `format`, and 16-byte aligned for the CUDA
// kernels (aligned_dense; the CPU kernels need no alignment).
inline at::Tensor dense_input(const Backend& backend, const at::Tensor& t,
                              at::MemoryFormat format) {
  return backend.device == c10::DeviceType::CUDA ? aligned_dense(t, format) : t.contiguous(format);
}

// t (called `name`) is on x's device with x's dtype.
inline void check_like_x(const Label& label, const at::Tensor& t, const at::Tensor& x,
                         const char* name) {
  TORCH_CHECK(t.device() == x.device(), label, ": ", name, " is on ", t.device(),
              " but x is on ", x.device());
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), label, ": ", name, " must be ",
              x.scalar_type(), " like x, got ", t.scalar_type());
}

}  // namespace stylegan_fast
