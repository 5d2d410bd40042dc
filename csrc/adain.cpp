// CPU kernels of stylegan_fast::adain_fwd / adain_bwd (adaptive instance normalization; checks
// in adain.h, shared with adain_cuda.cu):
//
//   mean = mean_hw(x),  var = mean_hw((x - mean)^2),  rstd = 1 / sqrt(var + eps)
//   x_hat = (x - mean) * rstd,  y = x_hat * scale + bias
//   dbias = sum_hw(dy),  dscale = sum_hw(dy * x_hat)
//   dx = rstd * scale * (dy - dbias / HW - x_hat * dscale / HW)
//
// The input is walked as [groups, pixels, channels] with one statistic per (group, channel):
// NCHW is [N*C, H*W, 1] (each plane contiguous, the loops vectorise over pixels), channels_last
// is [N, H*W, C] (a pixel's channels side by side, the loops vectorise over C). Pixels are cut
// into chunks of a fixed size; each chunk gets its mean and sum of squared deviations from two
// passes of its own (the corrected two-pass algorithm: no E[x^2] - E[x]^2 cancellation), and
// chunks merge in chunk order with Chan's pairwise update. Chunk boundaries and merge order do
// not depend on the thread count, so results are bitwise reproducible. Statistics and sums run
// in float (double for double inputs); each output is rounded once.

#include <array>
#include <cmath>
#include <vector>

#include "adain.h"
#include "registration.h"

namespace stylegan_fast {
namespace {

constexpr Label kLabel{"adain", kCppBackend};

// sum_{i < n} term(i) with independent accumulators, lane = i % lanes. The compiler may
// vectorise a sum only over accumulators it is given (it must not reassociate one); 64 bytes
// of them (four SSE registers) hide the add latency: 32 bytes ran ~20% slower. One sum per
// loop: GCC vectorised a loop that feeds two lane arrays across its iterations, with
// shuffles, and adain_bwd's reductions took 0.85 ms instead of 0.39 ms ([4, 64, 64, 64]
// fp32, one thread). The lanes are added pairwise in a fixed order: reproducible results.
template <typename acc_t, typename Term>
inline acc_t lane_sum(int64_t n, const Term& term) {
  constexpr int kLanes = 64 / sizeof(acc_t);
  acc_t lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += term(i + l);
  }
  for (int l = 0; i < n; ++i, ++l) lanes[l] += term(i);
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  }
  return lanes[0];
}

// x viewed as [groups, pixels, channels]; the statistic of (group, channel) is plane
// group * channels + channel of the [N, C] statistics in both layouts.
struct Planes {
  int64_t groups = 0;
  int64_t pixels = 0;
  int64_t channels = 1;
  int64_t chunk_pixels = 1;
  int64_t chunks = 0;

  int64_t chunk_begin(int64_t j) const { return j * chunk_pixels; }
  int64_t chunk_end(int64_t j) const { return std::min(pixels, (j + 1) * chunk_pixels); }
  bool planar() const { return channels == 1; }
};

Planes describe(const at::Tensor& x, at::MemoryFormat format) {
  Planes p;
  const int64_t N = x.size(0), C = x.size(1);
  p.pixels = x.size(2) * x.size(3);
  if (format == at::MemoryFormat::ChannelsLast) {
    p.groups = N;
    p.channels = C;
  } else {
    p.groups = N * C;
    p.channels = 1;
  }
  p.chunk_pixels = std::max<int64_t>(1, kReduceChunk / std::max<int64_t>(1, p.channels));
  p.chunks = ceil_div(p.pixels, p.chunk_pixels);
  return p;
}

// Calls fn(group, chunk) for every chunk of every group, in parallel.
template <typename Fn>
void parallel_chunks(const Planes& p, const Fn& fn) {
  const int64_t tasks = p.groups * p.chunks;
  const int64_t task_elements =
      std::max<int64_t>(1, std::min(p.pixels, p.chunk_pixels) * p.channels);
  at::parallel_for(0, tasks, std::max<int64_t>(1, kGrain / task_elements),
                   [&](int64_t t0, int64_t t1) {
                     for (int64_t t = t0; t < t1; ++t) fn(t / p.chunks, t % p.chunks);
                   });
}

// Calls fn(group) for every group, in parallel.
template <typename Fn>
void parallel_groups(const Planes& p, const Fn& fn) {
  const int64_t group_work = std::max<int64_t>(1, p.chunks * p.channels);
  at::parallel_for(0, p.groups, std::max<int64_t>(1, kGrain / group_work),
                   [&](int64_t g0, int64_t g1) {
                     for (int64_t g = g0; g < g1; ++g) fn(g);
                   });
}

template <typename scalar_t>
struct Forward {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  const scalar_t* scale;
  const scalar_t* bias;
  scalar_t* y;
  acc_t* mean;  // [N, C]
  acc_t* rstd;  // [N, C]
  acc_t eps;
  Planes p;
  // Per chunk and channel: the chunk's mean and sum of squared deviations from it.
  std::vector<acc_t> chunk_mean, chunk_m2;
  // scale and bias in the accumulation type, [N, C].
  std::vector<acc_t> style_scale, style_bias;

  void chunk_moments(int64_t g, int64_t j) {
    const int64_t s0 = p.chunk_begin(j), s1 = p.chunk_end(j);
    const acc_t count = acc_t(s1 - s0);
    const int64_t C = p.channels;
    acc_t* cmean = chunk_mean.data() + (g * p.chunks + j) * C;
    acc_t* cm2 = chunk_m2.data() + (g * p.chunks + j) * C;
    const scalar_t* xg = x + g * p.pixels * C;
    if (p.planar()) {
      const scalar_t* v = xg + s0;
      const int64_t n = s1 - s0;
      const acc_t rough_mean =
          lane_sum<acc_t>(n, [&](int64_t i) { return acc_t(v[i]); }) / count;
      // Deviations from the rough mean are small, so their sum corrects it accurately and
      // their squares carry no cancellation.
      const acc_t dev_sum =
          lane_sum<acc_t>(n, [&](int64_t i) { return acc_t(v[i]) - rough_mean; });
      const acc_t sq_sum = lane_sum<acc_t>(n, [&](int64_t i) {
        const acc_t d = acc_t(v[i]) - rough_mean;
        return d * d;
      });
      cmean[0] = rough_mean + dev_sum / count;
      cm2[0] = sq_sum - dev_sum * (dev_sum / count);
      return;
    }
    // channels_last: one accumulator per channel, the inner loops run over contiguous C.
    std::vector<acc_t> dev(C, acc_t(0));
    for (int64_t c = 0; c < C; ++c) cmean[c] = acc_t(0);
    for (int64_t s = s0; s < s1; ++s) {
      const scalar_t* row = xg + s * C;
      for (int64_t c = 0; c < C; ++c) cmean[c] += acc_t(row[c]);
    }
    for (int64_t c = 0; c < C; ++c) {
      cmean[c] /= count;
      cm2[c] = acc_t(0);
    }
    for (int64_t s = s0; s < s1; ++s) {
      const scalar_t* row = xg + s * C;
      for (int64_t c = 0; c < C; ++c) {
        const acc_t d = acc_t(row[c]) - cmean[c];
        dev[c] += d;
        cm2[c] += d * d;
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      cmean[c] += dev[c] / count;
      cm2[c] -= dev[c] * (dev[c] / count);
    }
  }

  // Merges the chunks of group g in chunk order (Chan et al.) into mean and rstd.
  void finalize(int64_t g) {
    const int64_t C = p.channels;
    for (int64_t c = 0; c < C; ++c) {
      acc_t n = 0, m = 0, m2 = 0;
      for (int64_t j = 0; j < p.chunks; ++j) {
        const int64_t at = (g * p.chunks + j) * C + c;
        const acc_t nb = acc_t(p.chunk_end(j) - p.chunk_begin(j));
        if (j == 0) {
          n = nb;
          m = chunk_mean[at];
          m2 = chunk_m2[at];
          continue;
        }
        const acc_t merged = n + nb;
        const acc_t delta = chunk_mean[at] - m;
        m += delta * (nb / merged);
        m2 += chunk_m2[at] + delta * delta * (n * (nb / merged));
        n = merged;
      }
      mean[g * C + c] = m;
      rstd[g * C + c] = plane_norm::inverse_std(m2 / acc_t(p.pixels), eps);
    }
  }

  void normalize(int64_t g, int64_t j) {
    const int64_t s0 = p.chunk_begin(j), s1 = p.chunk_end(j);
    const int64_t C = p.channels;
    const int64_t offset = g * p.pixels * C;
    const acc_t* m = mean + g * C;
    const acc_t* r = rstd + g * C;
    const acc_t* sc = style_scale.data() + g * C;
    const acc_t* bi = style_bias.data() + g * C;
    if (p.planar()) {
      const acc_t mg = m[0], rg = r[0], sg = sc[0], bg = bi[0];
      const scalar_t* xg = x + offset;
      scalar_t* yg = y + offset;
      for (int64_t i = s0; i < s1; ++i) {
        yg[i] = static_cast<scalar_t>((acc_t(xg[i]) - mg) * rg * sg + bg);
      }
      return;
    }
    for (int64_t s = s0; s < s1; ++s) {
      const scalar_t* row = x + offset + s * C;
      scalar_t* out = y + offset + s * C;
      for (int64_t c = 0; c < C; ++c) {
        out[c] = static_cast<scalar_t>((acc_t(row[c]) - m[c]) * r[c] * sc[c] + bi[c]);
      }
    }
  }

  void run() {
    chunk_mean.assign(p.groups * p.chunks * p.channels, acc_t(0));
    chunk_m2.assign(p.groups * p.chunks * p.channels, acc_t(0));
    style_scale.assign(scale, scale + p.groups * p.channels);
    style_bias.assign(bias, bias + p.groups * p.channels);
    // A group in one chunk is normalised by the task that measured it, while still in cache.
    const bool fused = p.chunks == 1;
    parallel_chunks(p, [&](int64_t g, int64_t j) {
      chunk_moments(g, j);
      if (fused) {
        finalize(g);
        normalize(g, j);
      }
    });
    if (fused) return;
    parallel_groups(p, [&](int64_t g) { finalize(g); });
    parallel_chunks(p, [&](int64_t g, int64_t j) { normalize(g, j); });
  }
};

template <typename scalar_t>
struct Backward {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* dy;
  const scalar_t* x;
  const scalar_t* scale;
  const acc_t* mean;
  const acc_t* rstd;
  scalar_t* dx;      // nullptr: not requested
  scalar_t* dscale;  // nullptr: not requested
  scalar_t* dbias;   // nullptr: not requested
  Planes p;
  // Per chunk and channel: sum(dy) and sum(dy * x_hat).
  std::vector<acc_t> chunk_dy, chunk_dy_xhat;
  // Per plane, for dx = coef * (dy - mean_dy - x_hat * mean_dy_xhat).
  std::vector<acc_t> coef, mean_dy, mean_dy_xhat;

  void chunk_sums(int64_t g, int64_t j) {
    const int64_t s0 = p.chunk_begin(j), s1 = p.chunk_end(j);
    const int64_t C = p.channels;
    const int64_t offset = g * p.pixels * C;
    acc_t* sum_dy = chunk_dy.data() + (g * p.chunks + j) * C;
    acc_t* sum_dy_xhat = chunk_dy_xhat.data() + (g * p.chunks + j) * C;
    const acc_t* m = mean + g * C;
    const acc_t* r = rstd + g * C;
    if (p.planar()) {
      const scalar_t* xv = x + offset + s0;
      const scalar_t* dyv = dy + offset + s0;
      const int64_t n = s1 - s0;
      const acc_t mg = m[0], rg = r[0];
      sum_dy[0] = lane_sum<acc_t>(n, [&](int64_t i) { return acc_t(dyv[i]); });
      sum_dy_xhat[0] = lane_sum<acc_t>(
          n, [&](int64_t i) { return acc_t(dyv[i]) * ((acc_t(xv[i]) - mg) * rg); });
      return;
    }
    for (int64_t c = 0; c < C; ++c) sum_dy[c] = sum_dy_xhat[c] = acc_t(0);
    for (int64_t s = s0; s < s1; ++s) {
      const scalar_t* xr = x + offset + s * C;
      const scalar_t* dyr = dy + offset + s * C;
      for (int64_t c = 0; c < C; ++c) {
        const acc_t d = acc_t(dyr[c]);
        sum_dy[c] += d;
        sum_dy_xhat[c] += d * ((acc_t(xr[c]) - m[c]) * r[c]);
      }
    }
  }

  void finalize(int64_t g) {
    const int64_t C = p.channels;
    const acc_t inv_count = acc_t(1) / acc_t(p.pixels);
    for (int64_t c = 0; c < C; ++c) {
      acc_t sdy = 0, sdyx = 0;
      for (int64_t j = 0; j < p.chunks; ++j) {
        sdy += chunk_dy[(g * p.chunks + j) * C + c];
        sdyx += chunk_dy_xhat[(g * p.chunks + j) * C + c];
      }
      const int64_t plane = g * C + c;
      if (dbias != nullptr) dbias[plane] = static_cast<scalar_t>(sdy);
      if (dscale != nullptr) dscale[plane] = static_cast<scalar_t>(sdyx);
      if (dx == nullptr) continue;
      acc_t k = rstd[plane] * acc_t(scale[plane]);
      // The reference's autograd spreads any Inf or NaN among dy, scale and rstd over the
      // whole plane (through the mean and variance), as NaN. The factored formula would
      // leave some of it as +-Inf.
      if (!std::isfinite(k * sdy) || !std::isfinite(k * sdyx)) {
        k = std::numeric_limits<acc_t>::quiet_NaN();
      }
      coef[plane] = k;
      mean_dy[plane] = sdy * inv_count;
      mean_dy_xhat[plane] = sdyx * inv_count;
    }
  }

  void input_gradient(int64_t g, int64_t j) {
    const int64_t s0 = p.chunk_begin(j), s1 = p.chunk_end(j);
    const int64_t C = p.channels;
    const int64_t offset = g * p.pixels * C;
    const acc_t* m = mean + g * C;
    const acc_t* r = rstd + g * C;
    const acc_t* k = coef.data() + g * C;
    const acc_t* mdy = mean_dy.data() + g * C;
    const acc_t* mdyx = mean_dy_xhat.data() + g * C;
    if (p.planar()) {
      const acc_t mg = m[0], rg = r[0], kg = k[0], mdyg = mdy[0], mdyxg = mdyx[0];
      const scalar_t* xg = x + offset;
      const scalar_t* dyg = dy + offset;
      scalar_t* dxg = dx + offset;
      for (int64_t i = s0; i < s1; ++i) {
        const acc_t x_hat = (acc_t(xg[i]) - mg) * rg;
        dxg[i] = static_cast<scalar_t>(kg * (acc_t(dyg[i]) - mdyg - x_hat * mdyxg));
      }
      return;
    }
    for (int64_t s = s0; s < s1; ++s) {
      const scalar_t* xr = x + offset + s * C;
      const scalar_t* dyr = dy + offset + s * C;
      scalar_t* out = dx + offset + s * C;
      for (int64_t c = 0; c < C; ++c) {
        const acc_t x_hat = (acc_t(xr[c]) - m[c]) * r[c];
        out[c] = static_cast<scalar_t>(k[c] * (acc_t(dyr[c]) - mdy[c] - x_hat * mdyx[c]));
      }
    }
  }

  void run() {
    const int64_t stats = p.groups * p.channels;
    chunk_dy.assign(p.groups * p.chunks * p.channels, acc_t(0));
    chunk_dy_xhat.assign(p.groups * p.chunks * p.channels, acc_t(0));
    if (dx != nullptr) {
      coef.resize(stats);
      mean_dy.resize(stats);
      mean_dy_xhat.resize(stats);
    }
    const bool fused = p.chunks == 1;
    parallel_chunks(p, [&](int64_t g, int64_t j) {
      chunk_sums(g, j);
      if (fused) {
        finalize(g);
        if (dx != nullptr) input_gradient(g, j);
      }
    });
    if (fused) return;
    parallel_groups(p, [&](int64_t g) { finalize(g); });
    if (dx != nullptr) parallel_chunks(p, [&](int64_t g, int64_t j) { input_gradient(g, j); });
  }
};

adain::Outputs forward(const adain::ForwardArgs& args) {
  const auto& [x, scale, bias, eps] = args;
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor scale_c = scale.contiguous();
  const at::Tensor bias_c = bias.contiguous();
  auto [y, mean, rstd] = plane_norm::new_forward_outputs(x, format);
  if (x.numel() == 0) return {y, mean, rstd};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "adain_fwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    Forward<scalar_t> f{xc.const_data_ptr<scalar_t>(),
                        scale_c.const_data_ptr<scalar_t>(),
                        bias_c.const_data_ptr<scalar_t>(),
                        y.mutable_data_ptr<scalar_t>(),
                        mean.mutable_data_ptr<acc_t>(),
                        rstd.mutable_data_ptr<acc_t>(),
                        acc_t(eps),
                        describe(xc, format)};
    f.run();
  });
  return {y, mean, rstd};
}

adain::Outputs backward(const adain::BackwardArgs& args) {
  const auto& [dy, x, scale, mean, rstd, output_mask] = args;
  const auto [compute_dx, compute_dscale, compute_dbias] = output_mask;
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor dyc = dy.contiguous(format);
  const at::Tensor scale_c = scale.contiguous();
  const at::Tensor mean_c = mean.contiguous();
  const at::Tensor rstd_c = rstd.contiguous();
  // layer_epilogue's gradients of (x, scale, style_bias).
  auto grads = plane_norm::new_grads(
      x, at::Tensor(), format, {compute_dx, false, false, false, compute_dscale, compute_dbias});
  at::Tensor &dx = grads[0], &dscale = grads[4], &dbias = grads[5];
  if (x.numel() == 0) {
    // Sums over empty planes.
    dscale.zero_();
    dbias.zero_();
    return {dx, dscale, dbias};
  }
  if (!compute_dx && !compute_dscale && !compute_dbias) return {dx, dscale, dbias};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "adain_bwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    Backward<scalar_t> b{dyc.const_data_ptr<scalar_t>(),
                         xc.const_data_ptr<scalar_t>(),
                         scale_c.const_data_ptr<scalar_t>(),
                         mean_c.const_data_ptr<acc_t>(),
                         rstd_c.const_data_ptr<acc_t>(),
                         compute_dx ? dx.mutable_data_ptr<scalar_t>() : nullptr,
                         compute_dscale ? dscale.mutable_data_ptr<scalar_t>() : nullptr,
                         compute_dbias ? dbias.mutable_data_ptr<scalar_t>() : nullptr,
                         describe(xc, format)};
    b.run();
  });
  return {dx, dscale, dbias};
}

using Cpu = adain::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(adain, CPU, Cpu::fwd, Cpu::bwd)

}  // namespace stylegan_fast
