// CPU kernels of stylegan_fast::layer_epilogue_fwd / layer_epilogue_bwd: the plane
// normalisation of plane_norm.h with the noise + bias + leaky ReLU prologue (its element math
// and outputs shared with the CUDA kernels, plane_norm_cuda.cuh; the checks in
// layer_epilogue.h).
//
// u is never stored: each pass recomputes it from x (a plane, or a block of channels of one
// sample, stays in cache between passes while it fits), so the memory traffic is reading x
// (and dy) and writing the outputs. The variance is the corrected two-pass one: a first pass gives
// a mean m0, a second sums d = u - m0 and d^2, so mean = m0 + sum(d) / HW and
// var = sum(d^2) / HW - (sum(d) / HW)^2 stay accurate when |mean| >> std (a plain sum or
// E[u^2] - E[u]^2 in float32 loses the variance there). Math runs in float (double for
// double inputs); every reduction has a fixed order, so results do not depend on threads.

#include <algorithm>
#include <array>
#include <cmath>

#include "layer_epilogue.h"
#include "registration.h"

namespace stylegan_fast {
namespace {

constexpr Label kLabel{"layer_epilogue", kCppBackend};

// Channels per parallel task. A task owns whole planes (n, c), so the statistics need no
// cross-task reduction; in channels_last a block of channels is the contiguous inner run.
constexpr int64_t kChannelBlock = 16;
// Independent accumulators for a reduction over one contiguous plane: they let the compiler
// vectorise the sum (a single accumulator is a serial dependency chain).
constexpr int64_t kLanes = 8;
// Every reduction over a plane sums blocks of kSumBlock pixels into acc_t block accumulators
// and adds each block into double totals: the float32 rounding error then comes from blocks
// of 64 values, not from a running sum over the whole plane. Measured on a [1, 4, 1024, 1024]
// plane against float64: running float32 sums gave relative errors of 1e-5 (NCHW) and
// 2-5e-4 (channels_last) in y and every gradient, eager float32 1e-7. The totals' adds are
// one per 64 values: no measurable cost.
constexpr int64_t kSumBlock = 64;
using total_t = double;

template <typename acc_t, bool kNoise, bool kBias>
struct Activation {
  acc_t gain;
  acc_t alpha_gain;  // alpha * gain

  // v = x + noise_strength * noise + bias: the pre-activation, summed in the reference's order.
  inline acc_t pre(acc_t x, acc_t noise, acc_t strength, acc_t bias) const {
    acc_t v = x;
    if constexpr (kNoise) v = plane_norm::inject(v, strength, noise);
    if constexpr (kBias) v = v + bias;
    return v;
  }
  // lrelu(v) * gain = v * slope(v). A select between two values followed by one multiply
  // compiles to vector compare-and-blend; `v > 0 ? v : v * alpha` compiles to a branch per
  // element (the compiler may not speculate a multiply that could raise an FP exception):
  // with it the forward of [4, 64, 64, 64] took 38 ms on random signs and 7 ms on positive
  // input (one thread), with the select ~2-3 ms.
  inline acc_t slope(acc_t v) const { return plane_norm::lrelu_slope(v, gain, alpha_gain); }
  inline acc_t value(acc_t v) const { return v * slope(v); }
  // noise[i], or 0 without noise (the pointer is then null and never read).
  template <typename scalar_t>
  inline acc_t noise_at(const scalar_t* noise, int64_t i) const {
    if constexpr (kNoise) {
      return acc_t(noise[i]);
    } else {
      return acc_t(0);
    }
  }
};

// Dense views of the inputs, in the layout the kernel walks (NCHW or NHWC).
template <typename scalar_t>
struct Planes {
  const scalar_t* x = nullptr;
  const scalar_t* noise = nullptr;  // [N or 1, HW], nullptr without noise
  const scalar_t* noise_strength = nullptr;
  const scalar_t* bias = nullptr;
  const scalar_t* scale = nullptr;  // [N, C]
  int64_t N = 0, C = 0, HW = 0;
  bool noise_per_sample = false;  // noise is [N, 1, H, W], not [1, 1, H, W]

  int64_t blocks() const { return ceil_div(C, kChannelBlock); }
  // Tasks per thread at least: a small tensor runs inline, without starting a parallel region.
  int64_t task_grain() const {
    return std::max<int64_t>(1, kGrain / std::max<int64_t>(1, kChannelBlock * HW));
  }
  const scalar_t* noise_of(int64_t n) const {
    return noise == nullptr ? nullptr : noise + (noise_per_sample ? n * HW : 0);
  }
};

template <typename T>
inline T load(const T* p, int64_t i) {
  return p == nullptr ? T(0) : p[i];
}

// The corrected two-pass statistics of one plane from its sums: m0, sum(u - m0), and
// sum((u - m0)^2).
template <typename acc_t>
inline void finish_statistics(acc_t m0, acc_t sum_d, acc_t sum_d2, int64_t hw, acc_t eps,
                              acc_t& mean, acc_t& rstd) {
  const acc_t inv_hw = acc_t(1) / acc_t(hw);
  const acc_t shift = sum_d * inv_hw;
  mean = m0 + shift;
  rstd = plane_norm::inverse_std(sum_d2 * inv_hw - shift * shift, eps);
}

// The lanes' partial sums, added in a fixed order.
template <typename acc_t>
inline acc_t sum_lanes(const std::array<acc_t, kLanes>& lanes) {
  acc_t total = 0;
  for (int64_t j = 0; j < kLanes; ++j) total += lanes[j];
  return total;
}

// Calls step(i, lane) for i in [0, HW), lane = i's accumulator in [0, kLanes), then flush()
// after every kSumBlock values (see kSumBlock): the fixed blocking of every NCHW reduction.
template <typename Step, typename Flush>
inline void for_blocks_of_lanes(int64_t HW, Step&& step, Flush&& flush) {
  for (int64_t begin = 0; begin < HW; begin += kSumBlock) {
    const int64_t end = std::min(HW, begin + kSumBlock);
    const int64_t lane_end = begin + (end - begin) / kLanes * kLanes;
    for (int64_t i = begin; i < lane_end; i += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) step(i + j, j);
    }
    for (int64_t i = lane_end; i < end; ++i) step(i, i - lane_end);
    flush();
  }
}

// Moves a block's lane sums into `total` (in a fixed order) and clears them.
template <typename acc_t>
inline void flush_lanes(std::array<acc_t, kLanes>& lanes, total_t& total) {
  total += total_t(sum_lanes(lanes));
  lanes.fill(acc_t(0));
}

// Moves a block's per-channel sums into the channels' totals and clears them.
template <typename acc_t>
inline void flush_channels(std::array<acc_t, kChannelBlock>& block,
                           std::array<total_t, kChannelBlock>& total, int64_t channels) {
  for (int64_t j = 0; j < channels; ++j) {
    total[j] += total_t(block[j]);
    block[j] = acc_t(0);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward

template <typename scalar_t, typename Act>
void forward_nchw(const Planes<scalar_t>& planes, const scalar_t* style_bias, const Act& activation,
                  at::opmath_type<scalar_t> eps, scalar_t* y, at::opmath_type<scalar_t>* means,
                  at::opmath_type<scalar_t>* rstds) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t HW = planes.HW;
  const int64_t tasks = planes.N * planes.blocks();
  at::parallel_for(0, tasks, planes.task_grain(), [&](int64_t k0, int64_t k1) {
    // Local copies: the compiler then knows the output stores cannot change them, keeps
    // them in registers and vectorises the loops.
    const Planes<scalar_t> p = planes;
    const Act act = activation;
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t n = k / p.blocks();
      const int64_t c0 = (k % p.blocks()) * kChannelBlock;
      const int64_t c1 = std::min(p.C, c0 + kChannelBlock);
      const scalar_t* noise = p.noise_of(n);
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t plane = n * p.C + c;
        const scalar_t* xp = p.x + plane * HW;
        const acc_t strength = acc_t(load(p.noise_strength, c));
        const acc_t bias = acc_t(load(p.bias, c));
        auto u_at = [&](int64_t i) {
          return act.value(act.pre(acc_t(xp[i]), act.noise_at(noise, i), strength, bias));
        };
        std::array<acc_t, kLanes> s{};
        total_t sum = 0;
        for_blocks_of_lanes(
            HW, [&](int64_t i, int64_t j) { s[j] += u_at(i); }, [&] { flush_lanes(s, sum); });
        const acc_t m0 = acc_t(sum / total_t(HW));

        std::array<acc_t, kLanes> sd{}, sd2{};
        total_t sum_d = 0, sum_d2 = 0;
        for_blocks_of_lanes(
            HW,
            [&](int64_t i, int64_t j) {
              const acc_t d = u_at(i) - m0;
              sd[j] += d;
              sd2[j] += d * d;
            },
            [&] {
              flush_lanes(sd, sum_d);
              flush_lanes(sd2, sum_d2);
            });
        acc_t mean, rstd;
        finish_statistics(m0, acc_t(sum_d), acc_t(sum_d2), HW, eps, mean, rstd);
        means[plane] = mean;
        rstds[plane] = rstd;

        const acc_t a = rstd * acc_t(p.scale[plane]);
        const acc_t b = acc_t(style_bias[plane]);
        scalar_t* yp = y + plane * HW;
        for (int64_t i = 0; i < HW; ++i) {
          yp[i] = static_cast<scalar_t>(plane_norm::styled(u_at(i), mean, a, b));
        }
      }
    }
  });
}

template <typename scalar_t, typename Act>
void forward_nhwc(const Planes<scalar_t>& planes, const scalar_t* style_bias, const Act& activation,
                  at::opmath_type<scalar_t> eps, scalar_t* y, at::opmath_type<scalar_t>* means,
                  at::opmath_type<scalar_t>* rstds) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t HW = planes.HW, C = planes.C;
  const int64_t tasks = planes.N * planes.blocks();
  at::parallel_for(0, tasks, planes.task_grain(), [&](int64_t k0, int64_t k1) {
    // Local copies: the compiler then knows the output stores cannot change them, keeps
    // them in registers and vectorises the loops.
    const Planes<scalar_t> p = planes;
    const Act act = activation;
    std::array<acc_t, kChannelBlock> strength{}, bias{}, m0{}, mean{}, a{}, b{}, block_s{},
        block_d{}, block_d2{};
    std::array<total_t, kChannelBlock> sum{}, sum_d{}, sum_d2{};
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t n = k / p.blocks();
      const int64_t c0 = (k % p.blocks()) * kChannelBlock;
      const int64_t cb = std::min(C, c0 + kChannelBlock) - c0;
      const scalar_t* noise = p.noise_of(n);
      const scalar_t* xs = p.x + n * HW * C + c0;
      for (int64_t j = 0; j < cb; ++j) {
        strength[j] = acc_t(load(p.noise_strength, c0 + j));
        bias[j] = acc_t(load(p.bias, c0 + j));
        sum[j] = sum_d[j] = sum_d2[j] = total_t(0);
      }
      auto u_at = [&](int64_t i, int64_t j, acc_t nz) {
        return act.value(act.pre(acc_t(xs[i * C + j]), nz, strength[j], bias[j]));
      };
      for (int64_t i = 0; i < HW; ++i) {
        const acc_t nz = act.noise_at(noise, i);
        for (int64_t j = 0; j < cb; ++j) block_s[j] += u_at(i, j, nz);
        if ((i + 1) % kSumBlock == 0 || i + 1 == HW) flush_channels(block_s, sum, cb);
      }
      for (int64_t j = 0; j < cb; ++j) m0[j] = acc_t(sum[j] / total_t(HW));
      for (int64_t i = 0; i < HW; ++i) {
        const acc_t nz = act.noise_at(noise, i);
        for (int64_t j = 0; j < cb; ++j) {
          const acc_t d = u_at(i, j, nz) - m0[j];
          block_d[j] += d;
          block_d2[j] += d * d;
        }
        if ((i + 1) % kSumBlock == 0 || i + 1 == HW) {
          flush_channels(block_d, sum_d, cb);
          flush_channels(block_d2, sum_d2, cb);
        }
      }
      for (int64_t j = 0; j < cb; ++j) {
        const int64_t plane = n * C + c0 + j;
        acc_t rstd;
        finish_statistics(m0[j], acc_t(sum_d[j]), acc_t(sum_d2[j]), HW, eps, mean[j], rstd);
        means[plane] = mean[j];
        rstds[plane] = rstd;
        a[j] = rstd * acc_t(p.scale[plane]);
        b[j] = acc_t(style_bias[plane]);
      }
      scalar_t* ys = y + n * HW * C + c0;
      for (int64_t i = 0; i < HW; ++i) {
        const acc_t nz = act.noise_at(noise, i);
        for (int64_t j = 0; j < cb; ++j) {
          ys[i * C + j] =
              static_cast<scalar_t>(plane_norm::styled(u_at(i, j, nz), mean[j], a[j], b[j]));
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Backward

// Where the backward writes; nullptr for what was not requested. The [N, C] per-plane sums and
// the per-task dnoise partials are reduced afterwards in a fixed order.
template <typename scalar_t>
struct Grads {
  scalar_t* dx = nullptr;
  scalar_t* dscale = nullptr;
  scalar_t* dstyle_bias = nullptr;
  at::opmath_type<scalar_t>* dbias_planes = nullptr;            // [N, C]
  at::opmath_type<scalar_t>* dnoise_strength_planes = nullptr;  // [N, C]
  at::opmath_type<scalar_t>* dnoise_partials = nullptr;         // [N, blocks, HW]
  bool second_pass() const {
    return dx != nullptr || dbias_planes != nullptr || dnoise_strength_planes != nullptr ||
           dnoise_partials != nullptr;
  }
};

// The first backward pass sums, per plane, dy and dy * u_hat (dstyle_bias, dscale) and, for
// the instance-norm backward, g = dy * scale and g * u_hat element by element, as torch's
// autograd of the reference does: an infinite scale then gives the same NaNs (inf - inf)
// instead of the +-inf that scale * sum(dy) would.
template <typename scalar_t, typename Act>
void backward_nchw(const Planes<scalar_t>& planes, const scalar_t* dy,
                   const at::opmath_type<scalar_t>* means, const at::opmath_type<scalar_t>* rstds,
                   const Act& activation, const Grads<scalar_t>& grads) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t HW = planes.HW;
  const int64_t tasks = planes.N * planes.blocks();
  const acc_t inv_hw = acc_t(1) / acc_t(HW);
  at::parallel_for(0, tasks, planes.task_grain(), [&](int64_t k0, int64_t k1) {
    // Local copies: the compiler then knows the output stores cannot change them, keeps
    // them in registers and vectorises the loops.
    const Planes<scalar_t> p = planes;
    const Act act = activation;
    const Grads<scalar_t> g = grads;
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t n = k / p.blocks();
      const int64_t c0 = (k % p.blocks()) * kChannelBlock;
      const int64_t c1 = std::min(p.C, c0 + kChannelBlock);
      const scalar_t* noise = p.noise_of(n);
      acc_t* dnoise = g.dnoise_partials != nullptr ? g.dnoise_partials + k * HW : nullptr;
      if (dnoise != nullptr) std::fill(dnoise, dnoise + HW, acc_t(0));
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t plane = n * p.C + c;
        const int64_t base = plane * HW;
        const acc_t strength = acc_t(load(p.noise_strength, c));
        const acc_t bias = acc_t(load(p.bias, c));
        const acc_t mean = means[plane], rstd = rstds[plane];
        auto u_hat_at = [&](int64_t i) {
          const acc_t v = act.pre(acc_t(p.x[base + i]), act.noise_at(noise, i), strength, bias);
          return plane_norm::normalized(act.value(v), mean, rstd);
        };
        const acc_t scale = acc_t(p.scale[plane]);
        std::array<acc_t, kLanes> s_dy{}, s_dy_u_hat{}, s_g{}, s_g_u_hat{};
        total_t sum_dy = 0, sum_dy_u_hat = 0, sum_g = 0, sum_g_u_hat = 0;
        for_blocks_of_lanes(
            HW,
            [&](int64_t i, int64_t j) {
              const acc_t d = acc_t(dy[base + i]), u_hat = u_hat_at(i), gi = d * scale;
              s_dy[j] += d;
              s_dy_u_hat[j] += d * u_hat;
              s_g[j] += gi;
              s_g_u_hat[j] += gi * u_hat;
            },
            [&] {
              flush_lanes(s_dy, sum_dy);
              flush_lanes(s_dy_u_hat, sum_dy_u_hat);
              flush_lanes(s_g, sum_g);
              flush_lanes(s_g_u_hat, sum_g_u_hat);
            });
        if (g.dscale != nullptr) g.dscale[plane] = static_cast<scalar_t>(acc_t(sum_dy_u_hat));
        if (g.dstyle_bias != nullptr) g.dstyle_bias[plane] = static_cast<scalar_t>(acc_t(sum_dy));
        if (!g.second_pass()) continue;

        const acc_t mean_g = acc_t(sum_g) * inv_hw;
        const acc_t mean_g_u_hat = acc_t(sum_g_u_hat) * inv_hw;
        std::array<acc_t, kLanes> s_dt{}, s_dt_noise{};
        total_t sum_dt = 0, sum_dt_noise = 0;
        auto dt_step = [&](int64_t i, int64_t j) {
          const acc_t nz = act.noise_at(noise, i);
          const acc_t v = act.pre(acc_t(p.x[base + i]), nz, strength, bias);
          const acc_t u_hat = plane_norm::normalized(act.value(v), mean, rstd);
          const acc_t du = plane_norm::normalization_grad(acc_t(dy[base + i]), scale, u_hat, rstd,
                                                          mean_g, mean_g_u_hat);
          const acc_t dt = du * act.slope(v);
          if (g.dx != nullptr) g.dx[base + i] = static_cast<scalar_t>(dt);
          s_dt[j] += dt;
          s_dt_noise[j] += dt * nz;
          if (dnoise != nullptr) dnoise[i] += dt * strength;
        };
        for_blocks_of_lanes(HW, dt_step, [&] {
          flush_lanes(s_dt, sum_dt);
          flush_lanes(s_dt_noise, sum_dt_noise);
        });
        if (g.dbias_planes != nullptr) g.dbias_planes[plane] = acc_t(sum_dt);
        if (g.dnoise_strength_planes != nullptr) {
          g.dnoise_strength_planes[plane] = acc_t(sum_dt_noise);
        }
      }
    }
  });
}

template <typename scalar_t, typename Act>
void backward_nhwc(const Planes<scalar_t>& planes, const scalar_t* dy,
                   const at::opmath_type<scalar_t>* means, const at::opmath_type<scalar_t>* rstds,
                   const Act& activation, const Grads<scalar_t>& grads) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t HW = planes.HW, C = planes.C;
  const int64_t tasks = planes.N * planes.blocks();
  const acc_t inv_hw = acc_t(1) / acc_t(HW);
  at::parallel_for(0, tasks, planes.task_grain(), [&](int64_t k0, int64_t k1) {
    // Local copies: the compiler then knows the output stores cannot change them, keeps
    // them in registers and vectorises the loops.
    const Planes<scalar_t> p = planes;
    const Act act = activation;
    const Grads<scalar_t> g = grads;
    std::array<acc_t, kChannelBlock> strength{}, bias{}, mean{}, rstd{}, scale{}, mean_g{},
        mean_g_u_hat{}, b_dy{}, b_dy_u_hat{}, b_g{}, b_g_u_hat{}, b_dt{}, b_dt_noise{};
    std::array<total_t, kChannelBlock> s_dy{}, s_dy_u_hat{}, s_g{}, s_g_u_hat{}, sum_dt{},
        sum_dt_noise{};
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t n = k / p.blocks();
      const int64_t c0 = (k % p.blocks()) * kChannelBlock;
      const int64_t cb = std::min(C, c0 + kChannelBlock) - c0;
      const scalar_t* noise = p.noise_of(n);
      const int64_t base = n * HW * C + c0;
      for (int64_t j = 0; j < cb; ++j) {
        const int64_t plane = n * C + c0 + j;
        strength[j] = acc_t(load(p.noise_strength, c0 + j));
        bias[j] = acc_t(load(p.bias, c0 + j));
        mean[j] = means[plane];
        rstd[j] = rstds[plane];
        scale[j] = acc_t(p.scale[plane]);
        s_dy[j] = s_dy_u_hat[j] = s_g[j] = s_g_u_hat[j] = total_t(0);
        sum_dt[j] = sum_dt_noise[j] = total_t(0);
      }
      for (int64_t i = 0; i < HW; ++i) {
        const acc_t nz = act.noise_at(noise, i);
        const int64_t row = base + i * C;
        for (int64_t j = 0; j < cb; ++j) {
          const acc_t v = act.pre(acc_t(p.x[row + j]), nz, strength[j], bias[j]);
          const acc_t d = acc_t(dy[row + j]);
          const acc_t u_hat = plane_norm::normalized(act.value(v), mean[j], rstd[j]);
          const acc_t gi = d * scale[j];
          b_dy[j] += d;
          b_dy_u_hat[j] += d * u_hat;
          b_g[j] += gi;
          b_g_u_hat[j] += gi * u_hat;
        }
        if ((i + 1) % kSumBlock == 0 || i + 1 == HW) {
          flush_channels(b_dy, s_dy, cb);
          flush_channels(b_dy_u_hat, s_dy_u_hat, cb);
          flush_channels(b_g, s_g, cb);
          flush_channels(b_g_u_hat, s_g_u_hat, cb);
        }
      }
      for (int64_t j = 0; j < cb; ++j) {
        const int64_t plane = n * C + c0 + j;
        if (g.dscale != nullptr) g.dscale[plane] = static_cast<scalar_t>(acc_t(s_dy_u_hat[j]));
        if (g.dstyle_bias != nullptr) g.dstyle_bias[plane] = static_cast<scalar_t>(acc_t(s_dy[j]));
        mean_g[j] = acc_t(s_g[j]) * inv_hw;
        mean_g_u_hat[j] = acc_t(s_g_u_hat[j]) * inv_hw;
      }
      if (!g.second_pass()) continue;

      acc_t* dnoise = g.dnoise_partials != nullptr ? g.dnoise_partials + k * HW : nullptr;
      for (int64_t i = 0; i < HW; ++i) {
        const acc_t nz = act.noise_at(noise, i);
        const int64_t row = base + i * C;
        acc_t dn = 0;
        for (int64_t j = 0; j < cb; ++j) {
          const acc_t v = act.pre(acc_t(p.x[row + j]), nz, strength[j], bias[j]);
          const acc_t u_hat = plane_norm::normalized(act.value(v), mean[j], rstd[j]);
          const acc_t du = plane_norm::normalization_grad(acc_t(dy[row + j]), scale[j], u_hat,
                                                          rstd[j], mean_g[j], mean_g_u_hat[j]);
          const acc_t dt = du * act.slope(v);
          if (g.dx != nullptr) g.dx[row + j] = static_cast<scalar_t>(dt);
          b_dt[j] += dt;
          b_dt_noise[j] += dt * nz;
          dn += dt * strength[j];
        }
        if (dnoise != nullptr) dnoise[i] = dn;
        if ((i + 1) % kSumBlock == 0 || i + 1 == HW) {
          flush_channels(b_dt, sum_dt, cb);
          flush_channels(b_dt_noise, sum_dt_noise, cb);
        }
      }
      for (int64_t j = 0; j < cb; ++j) {
        const int64_t plane = n * C + c0 + j;
        if (g.dbias_planes != nullptr) g.dbias_planes[plane] = acc_t(sum_dt[j]);
        if (g.dnoise_strength_planes != nullptr) {
          g.dnoise_strength_planes[plane] = acc_t(sum_dt_noise[j]);
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Dispatch and checks

// Calls fn(Activation<acc_t, kNoise, kBias>) with the optional terms resolved at compile time.
template <typename acc_t, typename Fn>
void with_activation(bool has_noise, bool has_bias, double alpha, double gain, Fn&& fn) {
  const acc_t g = acc_t(gain), ag = acc_t(alpha * gain);
  if (has_noise && has_bias) return fn(Activation<acc_t, true, true>{g, ag});
  if (has_noise) return fn(Activation<acc_t, true, false>{g, ag});
  if (has_bias) return fn(Activation<acc_t, false, true>{g, ag});
  return fn(Activation<acc_t, false, false>{g, ag});
}

template <typename scalar_t>
Planes<scalar_t> planes_of(const at::Tensor& x, const plane_norm::Prologue& prologue,
                           const at::Tensor& scale) {
  auto ptr = [](const at::Tensor& t) {
    return t.defined() ? t.const_data_ptr<scalar_t>() : nullptr;
  };
  Planes<scalar_t> p;
  p.x = x.const_data_ptr<scalar_t>();
  p.noise = ptr(prologue.noise);
  p.noise_strength = ptr(prologue.noise_strength);
  p.bias = ptr(prologue.bias);
  p.scale = scale.const_data_ptr<scalar_t>();
  p.N = x.size(0);
  p.C = x.size(1);
  p.HW = x.size(2) * x.size(3);
  p.noise_per_sample = prologue.noise_per_sample(p.N);
  return p;
}

layer_epilogue::ForwardOutputs forward(const layer_epilogue::ForwardArgs& args) {
  const auto& [in, style_bias, alpha, gain, eps] = args;
  const auto& [x, noise, noise_strength, bias, scale] = in;
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const plane_norm::Prologue prologue =
      plane_norm::dense_prologue(kCppBackend, noise, noise_strength, bias);
  const at::Tensor scale_c = scale.contiguous(), style_bias_c = style_bias.contiguous();
  auto [y, mean, rstd] = plane_norm::new_forward_outputs(x, format);
  if (x.numel() == 0) return {y, mean, rstd};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "layer_epilogue_fwd",
                                  [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto p = planes_of<scalar_t>(xc, prologue, scale_c);
    with_activation<acc_t>(noise.has_value(), bias.has_value(), alpha, gain, [&](const auto& act) {
      auto run = format == at::MemoryFormat::ChannelsLast
                     ? &forward_nhwc<scalar_t, std::decay_t<decltype(act)>>
                     : &forward_nchw<scalar_t, std::decay_t<decltype(act)>>;
      run(p, style_bias_c.const_data_ptr<scalar_t>(), act, acc_t(eps),
          y.mutable_data_ptr<scalar_t>(), mean.mutable_data_ptr<acc_t>(),
          rstd.mutable_data_ptr<acc_t>());
    });
  });
  return {y, mean, rstd};
}

layer_epilogue::BackwardOutputs backward(const layer_epilogue::BackwardArgs& args) {
  const auto& [dy, in, mean, rstd, alpha, gain, output_mask] = args;
  const auto& [x, noise, noise_strength, bias, scale] = in;
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format), dyc = dy.contiguous(format);
  const plane_norm::Prologue prologue =
      plane_norm::dense_prologue(kCppBackend, noise, noise_strength, bias);
  const at::Tensor scale_c = scale.contiguous();
  const at::Tensor mean_c = mean.contiguous(), rstd_c = rstd.contiguous();

  auto [dx, dnoise, dstrength, dbias, dscale, dstyle_bias] =
      plane_norm::new_grads(x, prologue.noise, format, output_mask);

  const auto acc_options = x.options().dtype(accumulation_type(x));
  const int64_t blocks = ceil_div(C, kChannelBlock);
  // Unrounded partial sums, reduced below in a fixed order.
  at::Tensor dbias_planes = output_mask[3] ? at::empty({N, C}, acc_options) : at::Tensor();
  at::Tensor dstrength_planes = output_mask[2] ? at::empty({N, C}, acc_options) : at::Tensor();
  at::Tensor dnoise_partials =
      output_mask[1] ? at::empty({N, blocks, HW}, acc_options) : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "layer_epilogue_bwd",
                                  [&] {
    using acc_t = at::opmath_type<scalar_t>;
    auto ptr = [](at::Tensor& t) {
      return t.defined() && t.numel() > 0 ? t.mutable_data_ptr<scalar_t>() : nullptr;
    };
    auto acc_ptr = [](at::Tensor& t) {
      return t.defined() && t.numel() > 0 ? t.mutable_data_ptr<acc_t>() : nullptr;
    };
    if (x.numel() > 0) {
      const auto p = planes_of<scalar_t>(xc, prologue, scale_c);
      Grads<scalar_t> g;
      g.dx = output_mask[0] ? ptr(dx) : nullptr;
      g.dscale = output_mask[4] ? ptr(dscale) : nullptr;
      g.dstyle_bias = output_mask[5] ? ptr(dstyle_bias) : nullptr;
      g.dbias_planes = acc_ptr(dbias_planes);
      g.dnoise_strength_planes = acc_ptr(dstrength_planes);
      g.dnoise_partials = acc_ptr(dnoise_partials);
      with_activation<acc_t>(noise.has_value(), bias.has_value(), alpha, gain,
                             [&](const auto& act) {
        auto run = format == at::MemoryFormat::ChannelsLast
                       ? &backward_nhwc<scalar_t, std::decay_t<decltype(act)>>
                       : &backward_nchw<scalar_t, std::decay_t<decltype(act)>>;
        run(p, dyc.const_data_ptr<scalar_t>(), mean_c.const_data_ptr<acc_t>(),
            rstd_c.const_data_ptr<acc_t>(), act, g);
      });
    } else {
      // Sums over no elements; an empty plane has no x to differentiate.
      if (output_mask[4]) dscale.zero_();
      if (output_mask[5]) dstyle_bias.zero_();
      if (dbias_planes.defined()) dbias_planes.zero_();
      if (dstrength_planes.defined()) dstrength_planes.zero_();
      if (dnoise_partials.defined()) dnoise_partials.zero_();
    }
    // Batch sums of the per-plane partials, n ascending.
    auto reduce_over_batch = [&](const at::Tensor& planes, at::Tensor& out) {
      const acc_t* src = planes.const_data_ptr<acc_t>();
      scalar_t* dst = out.mutable_data_ptr<scalar_t>();
      for (int64_t c = 0; c < C; ++c) {
        acc_t s = 0;
        for (int64_t n = 0; n < N; ++n) s += src[n * C + c];
        dst[c] = static_cast<scalar_t>(s);
      }
    };
    if (output_mask[3]) reduce_over_batch(dbias_planes, dbias);
    if (output_mask[2]) reduce_over_batch(dstrength_planes, dstrength);
    if (output_mask[1] && dnoise.numel() > 0) {
      // dnoise[m, hw] = sum over the blocks of every sample that shares noise plane m.
      const int64_t noise_planes = dnoise.size(0);
      const int64_t samples_per_plane = noise_planes == N ? 1 : N;
      const acc_t* partials = dnoise_partials.const_data_ptr<acc_t>();
      scalar_t* out = dnoise.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, noise_planes * HW, kGrain, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t m = i / HW, hw = i % HW;
          acc_t s = 0;
          for (int64_t n = m * samples_per_plane; n < (m + 1) * samples_per_plane; ++n) {
            for (int64_t b = 0; b < blocks; ++b) s += partials[(n * blocks + b) * HW + hw];
          }
          out[i] = static_cast<scalar_t>(s);
        }
      });
    }
  });
  return {dx, dnoise, dstrength, dbias, dscale, dstyle_bias};
}

using Cpu = layer_epilogue::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(layer_epilogue, CPU, Cpu::fwd, Cpu::bwd)

}  // namespace stylegan_fast
