// First-order autograd of the _C ops, in C++ (the Autograd dispatch key of each *_fwd op).
//
// Why C++: a Python-registered autograd kernel costs ~50-80 us per call, paid by every call
// whose inputs require grad; this one costs a few. On a GPU the StyleGAN layers below ~32 px
// are launch-bound, so that overhead alone would make a fused op slower than eager. Measured
// on the dev CPU, [2, 8, 4, 4] bias_act with grad inputs: 90 us through the Python kernel,
// 12 us through this one.
//
// Each backward calls the op's *_bwd kernel. When no graph is being built (a plain backward)
// it calls below autograd; under create_graph it calls through *_bwd's own (Python) autograd,
// which serves every higher order (R1 through the discriminator, gradgradcheck).
//
// What each backward asks its kernel for (the compute_* flags, the output_mask entries),
// whether it calls the kernel at all, and which gradients it returns follow the op's gradient
// table in Python (ops/<op>/registration.py: Gradients; the Python autograd computes its
// request from it). tests/ops/test_autograd_requests.py holds these nodes to the tables for
// every subset of inputs that require grad: change a table and its node together.
#include <algorithm>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace stylegan_fast {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptTensor = std::optional<at::Tensor>;

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  // Looked up on first use: the schemas are defined from Python after this library loads.
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

template <typename Handle, typename... Args>
auto call_backward_op(const Handle& op, Args&&... args) {
  if (at::GradMode::is_enabled()) {
    return op.call(std::forward<Args>(args)...);
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(std::forward<Args>(args)...);
}

inline at::Tensor or_undefined(const OptTensor& t) {
  return t.has_value() ? *t : at::Tensor();
}
inline OptTensor as_optional(const at::Tensor& t) {
  return t.defined() ? OptTensor(t) : std::nullopt;
}

// Autograd numbers only the tensor arguments that are present; `present[i]` says whether
// tensor slot i was, and needs(i) asks whether slot i wants a gradient.
struct Slots {
  const AutogradContext* ctx;
  std::vector<bool> present;
  bool needs(size_t slot) const {
    if (!present[slot]) return false;
    size_t edge = 0;
    for (size_t i = 0; i < slot; ++i) edge += present[i] ? 1 : 0;
    return ctx->needs_input_grad(edge);
  }
};

inline at::Tensor if_needed(bool needed, const at::Tensor& grad) {
  return needed ? grad : at::Tensor();
}

// ---------------------------------------------------------------------------------------------
// bias_act

using BiasActFwd = at::Tensor(const at::Tensor&, const OptTensor&, int64_t, c10::string_view,
                              double, double, std::optional<double>);
using BiasActBwd = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                      const OptTensor&, int64_t, c10::string_view,
                                                      double, double, std::optional<double>, bool);

class BiasAct : public torch::autograd::Function<BiasAct> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const OptTensor& b,
                            int64_t dim, c10::string_view act, double alpha, double gain,
                            std::optional<double> clamp) {
    static const auto op = find_op<BiasActFwd>("stylegan_fast::bias_act_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({x, or_undefined(b)});
    ctx->saved_data["dim"] = dim;
    ctx->saved_data["act"] = std::string(act);
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["gain"] = gain;
    ctx->saved_data["clamp"] = clamp;
    return op.call(x, b, dim, act, alpha, gain, clamp);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto bwd = find_op<BiasActBwd>("stylegan_fast::bias_act_bwd");
    const auto saved = ctx->get_saved_variables();
    const OptTensor b = as_optional(saved[1]);
    const Slots slots{ctx, {true, b.has_value()}};
    const bool compute_db = slots.needs(1);
    const auto& data = ctx->saved_data;
    auto [dx, db] = call_backward_op(bwd, grads[0], saved[0], b, data.at("dim").toInt(),
                                     data.at("act").toStringRef(), data.at("alpha").toDouble(),
                                     data.at("gain").toDouble(),
                                     data.at("clamp").toOptional<double>(), compute_db);
    // dx is computed whenever db is (db is its sum), and returned when x wants it.
    return {if_needed(slots.needs(0), dx), if_needed(compute_db, db), {}, {}, {}, {}, {}};
  }
};

at::Tensor bias_act_autograd(const at::Tensor& x, const OptTensor& b, int64_t dim,
                             c10::string_view act, double alpha, double gain,
                             std::optional<double> clamp) {
  return BiasAct::apply(x, b, dim, act, alpha, gain, clamp);
}

// ---------------------------------------------------------------------------------------------
// noise_injection

using NoiseFwd = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&);
using NoiseBwd = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                    const at::Tensor&, bool, bool);

class NoiseInjection : public torch::autograd::Function<NoiseInjection> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& noise,
                            const at::Tensor& strength) {
    static const auto op = find_op<NoiseFwd>("stylegan_fast::noise_injection_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({noise, strength});
    return op.call(x, noise, strength);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto bwd = find_op<NoiseBwd>("stylegan_fast::noise_injection_bwd");
    const auto saved = ctx->get_saved_variables();
    const bool compute_dnoise = ctx->needs_input_grad(1);
    const bool compute_dstrength = ctx->needs_input_grad(2);
    at::Tensor dnoise, dstrength;
    if (compute_dnoise || compute_dstrength) {
      std::tie(dnoise, dstrength) =
          call_backward_op(bwd, grads[0], saved[0], saved[1], compute_dnoise, compute_dstrength);
    }
    // dx = dy: the forward adds x unchanged.
    return {if_needed(ctx->needs_input_grad(0), grads[0]), if_needed(compute_dnoise, dnoise),
            if_needed(compute_dstrength, dstrength)};
  }
};

at::Tensor noise_injection_autograd(const at::Tensor& x, const at::Tensor& noise,
                                    const at::Tensor& strength) {
  return NoiseInjection::apply(x, noise, strength);
}

// ---------------------------------------------------------------------------------------------
// adain

using AdainFwd = std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&,
                                                                const at::Tensor&,
                                                                const at::Tensor&, double);
using AdainBwd = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&, std::array<bool, 3>);

class Adain : public torch::autograd::Function<Adain> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& scale,
                               const at::Tensor& bias, double eps) {
    static const auto op = find_op<AdainFwd>("stylegan_fast::adain_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, mean, rstd] = op.call(x, scale, bias, eps);
    ctx->mark_non_differentiable({mean, rstd});
    ctx->save_for_backward({x, scale, mean, rstd});
    return {y, mean, rstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto bwd = find_op<AdainBwd>("stylegan_fast::adain_bwd");
    const auto saved = ctx->get_saved_variables();
    const std::array<bool, 3> mask = {ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                      ctx->needs_input_grad(2)};
    if (!(mask[0] || mask[1] || mask[2])) return {{}, {}, {}, {}};
    auto [dx, dscale, dbias] =
        call_backward_op(bwd, grads[0], saved[0], saved[1], saved[2], saved[3], mask);
    return {if_needed(mask[0], dx), if_needed(mask[1], dscale), if_needed(mask[2], dbias), {}};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> adain_autograd(const at::Tensor& x,
                                                              const at::Tensor& scale,
                                                              const at::Tensor& bias,
                                                              double eps) {
  auto out = Adain::apply(x, scale, bias, eps);
  return {out[0], out[1], out[2]};
}

// ---------------------------------------------------------------------------------------------
// layer_epilogue

using EpilogueFwd = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const OptTensor&, const OptTensor&, const OptTensor&, const at::Tensor&,
    const at::Tensor&, double, double, double);
using EpilogueBwd =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, const OptTensor&, const OptTensor&,
        const OptTensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double,
        double, std::array<bool, 6>);

class LayerEpilogue : public torch::autograd::Function<LayerEpilogue> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const OptTensor& noise,
                               const OptTensor& noise_strength, const OptTensor& bias,
                               const at::Tensor& scale, const at::Tensor& style_bias,
                               double alpha, double gain, double eps) {
    static const auto op = find_op<EpilogueFwd>("stylegan_fast::layer_epilogue_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, mean, rstd] =
        op.call(x, noise, noise_strength, bias, scale, style_bias, alpha, gain, eps);
    ctx->mark_non_differentiable({mean, rstd});
    ctx->save_for_backward({x, or_undefined(noise), or_undefined(noise_strength),
                            or_undefined(bias), scale, mean, rstd});
    ctx->saved_data["alpha"] = alpha;
    ctx->saved_data["gain"] = gain;
    return {y, mean, rstd};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto bwd = find_op<EpilogueBwd>("stylegan_fast::layer_epilogue_bwd");
    const auto saved = ctx->get_saved_variables();
    const OptTensor noise = as_optional(saved[1]);
    const OptTensor noise_strength = as_optional(saved[2]);
    const OptTensor bias = as_optional(saved[3]);
    // Tensor slots in argument order: x, noise, noise_strength, bias, scale, style_bias.
    const Slots slots{ctx, {true, noise.has_value(), noise_strength.has_value(),
                            bias.has_value(), true, true}};
    const bool has_noise = noise_strength.has_value();
    const std::array<bool, 6> mask = {slots.needs(0), has_noise && slots.needs(1),
                                      has_noise && slots.needs(2), slots.needs(3),
                                      slots.needs(4), slots.needs(5)};
    if (std::none_of(mask.begin(), mask.end(), [](bool wanted) { return wanted; })) {
      return variable_list(9);  // noise needs grad but has no strength: nothing to compute
    }
    auto g = call_backward_op(bwd, grads[0], saved[0], noise, noise_strength, bias, saved[4],
                              saved[5], saved[6], ctx->saved_data["alpha"].toDouble(),
                              ctx->saved_data["gain"].toDouble(), mask);
    return {if_needed(mask[0], std::get<0>(g)), if_needed(mask[1], std::get<1>(g)),
            if_needed(mask[2], std::get<2>(g)), if_needed(mask[3], std::get<3>(g)),
            if_needed(mask[4], std::get<4>(g)), if_needed(mask[5], std::get<5>(g)),
            {}, {}, {}};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_epilogue_autograd(
    const at::Tensor& x, const OptTensor& noise, const OptTensor& noise_strength,
    const OptTensor& bias, const at::Tensor& scale, const at::Tensor& style_bias, double alpha,
    double gain, double eps) {
  auto out = LayerEpilogue::apply(x, noise, noise_strength, bias, scale, style_bias, alpha,
                                  gain, eps);
  return {out[0], out[1], out[2]};
}

// ---------------------------------------------------------------------------------------------
// upfirdn2d: linear in x, and its adjoint is upfirdn2d again (up and down swapped, taps
// reversed, padding mirrored; see ops/upfirdn2d/geometry.py: adjoint_params, whose formula this
// repeats and tests/ops/test_autograd_requests.py checks).
// The backward calls the forward op, through this autograd when a graph is built, so every
// order of derivative in x is a kernel call. f is a constant to the kernels: no gradient.

using UpfirdnFwd = at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t,
                              int64_t, int64_t, int64_t, int64_t, int64_t, bool, double);

class Upfirdn2d : public torch::autograd::Function<Upfirdn2d> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& f,
                            int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                            int64_t padx0, int64_t padx1, int64_t pady0, int64_t pady1,
                            bool flip_filter, double gain) {
    static const auto op = find_op<UpfirdnFwd>("stylegan_fast::upfirdn2d_fwd");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto y = op.call(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter,
                     gain);
    ctx->save_for_backward({f});
    const int64_t fh = f.size(0), fw = f.size(f.dim() - 1);
    const int64_t in_h = x.size(2), in_w = x.size(3), out_h = y.size(2), out_w = y.size(3);
    // The adjoint's parameters: down and up swapped, the first pad taps - pad0 - 1, the second
    // the one that makes the adjoint's output exactly the input's size.
    ctx->saved_data["params"] = std::vector<int64_t>{
        downx, downy, upx, upy, fw - padx0 - 1, in_w * upx - out_w * downx + padx0 - upx + 1,
        fh - pady0 - 1, in_h * upy - out_h * downy + pady0 - upy + 1};
    ctx->saved_data["flip_filter"] = !flip_filter;
    ctx->saved_data["gain"] = gain;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = find_op<UpfirdnFwd>("stylegan_fast::upfirdn2d_fwd");
    variable_list result(12);
    if (!ctx->needs_input_grad(0)) return result;
    const auto f = ctx->get_saved_variables()[0];
    const auto p = ctx->saved_data["params"].toIntVector();
    // Through the dispatcher with autograd on when a graph is built: the adjoint's own
    // backward (this class again) serves the next order.
    result[0] = call_backward_op(op, grads[0], f, p[0], p[1], p[2], p[3], p[4], p[5], p[6],
                                 p[7], ctx->saved_data["flip_filter"].toBool(),
                                 ctx->saved_data["gain"].toDouble());
    return result;
  }
};

at::Tensor upfirdn2d_autograd(const at::Tensor& x, const at::Tensor& f, int64_t upx,
                              int64_t upy, int64_t downx, int64_t downy, int64_t padx0,
                              int64_t padx1, int64_t pady0, int64_t pady1, bool flip_filter,
                              double gain) {
  return Upfirdn2d::apply(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter,
                          gain);
}

}  // namespace

TORCH_LIBRARY_IMPL(stylegan_fast, Autograd, m) {
  m.impl("bias_act_fwd", &bias_act_autograd);
  m.impl("noise_injection_fwd", &noise_injection_autograd);
  m.impl("adain_fwd", &adain_autograd);
  m.impl("layer_epilogue_fwd", &layer_epilogue_autograd);
  m.impl("upfirdn2d_fwd", &upfirdn2d_autograd);
}

}  // namespace stylegan_fast
