// The one way a kernel file registers an op's forward and backward kernels for a dispatch key
// (module.cpp links every file's registrations into _C; the schemas live in _library.py).
#pragma once

#include <torch/library.h>

// STYLEGAN_FAST_REGISTER_FWD_BWD(bias_act, CPU, bias_act_fwd_cpu, bias_act_bwd_cpu) registers
// stylegan_fast::bias_act_fwd and stylegan_fast::bias_act_bwd for the CPU key.
#define STYLEGAN_FAST_REGISTER_FWD_BWD(op, key, fwd, bwd) \
  TORCH_LIBRARY_IMPL(stylegan_fast, key, m) {              \
    m.impl(#op "_fwd", &fwd);                              \
    m.impl(#op "_bwd", &bwd);                              \
  }
