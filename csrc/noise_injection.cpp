// CPU kernels of stylegan_fast::noise_injection_fwd / noise_injection_bwd (the math and checks
// of noise_injection.h, shared with noise_injection_cuda.cu).
//
// The backward reads dy once and produces both reductions. Every sum runs in a fixed order
// that depends only on the shapes and the layout (never on the thread count): per-pixel sums
// over channels in channel order, per-channel sums as fixed-size partials added in task order.
// Math runs in float (double for double inputs) and each output is rounded once.

#include <algorithm>
#include <vector>

#include "noise_injection.h"
#include "registration.h"

namespace stylegan_fast {
namespace {

using noise_injection::inject;

constexpr Label kLabel{"noise_injection", kCppBackend};

// Pixels per backward task in NCHW: long enough rows for the vector units, short enough that
// the task's dnoise and noise tiles (2 x 256 floats) stay in L1 while all C rows stream by.
constexpr int64_t kPixelTile = 256;

// Independent partial sums per dot product: lets the compiler vectorise a reduction it may
// not reorder (two SSE registers of floats), and fixes the summation order whatever the
// vector width. 8 beat 16 in a standalone float test of both loops below (NCHW [4, 64, 64, 64]
// 306 vs 311 us, [8, 512, 8, 8] 100 vs 147 us; channels_last dnoise 275 vs 374 us).
constexpr int kLanes = 8;

struct Geometry {
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t pixels = 0;  // H * W
  bool noise_per_sample = true;  // noise is [N, 1, H, W] (else [1, 1, H, W], shared)
};

// The lanes, added as a fixed tree, then the elements past the last full group of lanes.
template <typename acc_t>
inline acc_t sum_lanes(acc_t* lanes, acc_t rest) {
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  }
  return lanes[0] + rest;
}

template <typename scalar_t>
std::vector<at::opmath_type<scalar_t>> to_opmath(const scalar_t* values, int64_t count) {
  std::vector<at::opmath_type<scalar_t>> out(count);
  for (int64_t i = 0; i < count; ++i) out[i] = values[i];
  return out;
}

template <typename scalar_t>
void forward_nchw(const scalar_t* x, const scalar_t* noise, const scalar_t* strength,
                  scalar_t* y, const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t HW = g.pixels;
  at::parallel_for(0, g.batch * g.channels, std::max<int64_t>(1, kGrain / HW),
                   [&](int64_t r0, int64_t r1) {
                     for (int64_t r = r0; r < r1; ++r) {
                       const int64_t n = r / g.channels;
                       const acc_t s = strength[r % g.channels];
                       const scalar_t* nz = noise + (g.noise_per_sample ? n * HW : 0);
                       const scalar_t* xr = x + r * HW;
                       scalar_t* yr = y + r * HW;
                       for (int64_t j = 0; j < HW; ++j) {
                         yr[j] = static_cast<scalar_t>(inject(acc_t(xr[j]), s, acc_t(nz[j])));
                       }
                     }
                   });
}

template <typename scalar_t>
void forward_nhwc(const scalar_t* x, const scalar_t* noise, const scalar_t* strength,
                  scalar_t* y, const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = g.channels;
  const auto s = to_opmath(strength, C);
  at::parallel_for(0, g.batch * g.pixels, std::max<int64_t>(1, kGrain / C),
                   [&](int64_t p0, int64_t p1) {
                     for (int64_t p = p0; p < p1; ++p) {
                       const acc_t nz = noise[g.noise_per_sample ? p : p % g.pixels];
                       const scalar_t* xp = x + p * C;
                       scalar_t* yp = y + p * C;
                       for (int64_t c = 0; c < C; ++c) {
                         yp[c] = static_cast<scalar_t>(inject(acc_t(xp[c]), s[c], nz));
                       }
                     }
                   });
}

// Where the per-pixel channel sums go: straight into dnoise for per-sample noise, or into a
// [N, H*W] buffer of unrounded sums that reduce_shared_noise then adds over the batch.
template <typename scalar_t>
struct PixelSink {
  scalar_t* dnoise;                         // per-sample noise: [N * HW]
  at::opmath_type<scalar_t>* per_sample;    // shared noise: [N * HW], else nullptr

  inline void store(int64_t p, at::opmath_type<scalar_t> v) const {
    if (per_sample != nullptr) {
      per_sample[p] = v;
    } else {
      dnoise[p] = static_cast<scalar_t>(v);
    }
  }
};

// One task = one image n and a tile of up to kPixelTile pixels: for each channel row of the
// tile, accumulate dy * strength[c] per pixel (dnoise) and the row's dot product with the
// noise tile (this task's partial of dstrength[c]).
template <typename scalar_t, bool kDnoise, bool kDstrength>
void backward_nchw(const scalar_t* dy, const scalar_t* noise,
                   const std::vector<at::opmath_type<scalar_t>>& strength,
                   const PixelSink<scalar_t>& sink, at::opmath_type<scalar_t>* partials,
                   const Geometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = g.channels, HW = g.pixels;
  const int64_t tiles = ceil_div(HW, kPixelTile);
  const int64_t grain = std::max<int64_t>(1, kGrain / (C * std::min(HW, kPixelTile)));
  at::parallel_for(0, g.batch * tiles, grain, [&](int64_t k0, int64_t k1) {
    acc_t dn[kPixelTile];
    acc_t nz[kPixelTile];
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t n = k / tiles;
      const int64_t start = (k % tiles) * kPixelTile;
      const int64_t len = std::min(kPixelTile, HW - start);
      const int64_t noise_offset = (g.noise_per_sample ? n * HW : 0) + start;
      for (int64_t j = 0; j < len; ++j) {
        dn[j] = 0;
        nz[j] = kDstrength ? acc_t(noise[noise_offset + j]) : acc_t(0);
      }
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* row = dy + (n * C + c) * HW + start;
        const acc_t s = strength[c];
        acc_t lanes[kLanes] = {};
        acc_t rest = 0;
        int64_t j = 0;
        for (; j + kLanes <= len; j += kLanes) {
          for (int l = 0; l < kLanes; ++l) {
            const acc_t d = row[j + l];
            if constexpr (kDnoise) dn[j + l] += d * s;
            if constexpr (kDstrength) lanes[l] += d * nz[j + l];
          }
        }
        for (; j < len; ++j) {
          const acc_t d = row[j];
          if constexpr (kDnoise) dn[j] += d * s;
          if constexpr (kDstrength) rest += d * nz[j];
        }
        if constexpr (kDstrength) partials[k * C + c] = sum_lanes(lanes, rest);
      }
      if constexpr (kDnoise) {
        for (int64_t j = 0; j < len; ++j) sink.store(n * HW + start + j, dn[j]);
      }
    }
  });
}

// One task = a run of whole pixels (kReduceChunk elements): per pixel, the dot product of its
// C values with strength (dnoise), and dy * noise added into this task's dstrength partials.
template <typename scalar_t, bool kDnoise, bool kDstrength>
void backward_nhwc(const scalar_t* dy, const scalar_t* noise,
                   const std::vector<at::opmath_type<scalar_t>>& strength,
                   const PixelSink<scalar_t>& sink, at::opmath_type<scalar_t>* partials,
                   const Geometry& g, int64_t pixels_per_task) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = g.channels;
  const int64_t P = g.batch * g.pixels;
  const int64_t grain = std::max<int64_t>(1, kGrain / (C * pixels_per_task));
  at::parallel_for(0, ceil_div(P, pixels_per_task), grain, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      acc_t* ds = kDstrength ? partials + k * C : nullptr;
      if constexpr (kDstrength) std::fill(ds, ds + C, acc_t(0));
      const int64_t p_end = std::min(P, (k + 1) * pixels_per_task);
      for (int64_t p = k * pixels_per_task; p < p_end; ++p) {
        const scalar_t* px = dy + p * C;
        const acc_t nz = kDstrength ? acc_t(noise[g.noise_per_sample ? p : p % g.pixels]) : 0;
        // Two loops over the pixel's C values (L1-resident the second time): fused into one,
        // the compiler vectorised them worse (standalone float test, [4, 64, 64, 64], one
        // thread, 16 lanes: 746 us fused vs 568 us split).
        if constexpr (kDnoise) {
          acc_t lanes[kLanes] = {};
          acc_t rest = 0;
          int64_t c = 0;
          for (; c + kLanes <= C; c += kLanes) {
            for (int l = 0; l < kLanes; ++l) lanes[l] += acc_t(px[c + l]) * strength[c + l];
          }
          for (; c < C; ++c) rest += acc_t(px[c]) * strength[c];
          sink.store(p, sum_lanes(lanes, rest));
        }
        if constexpr (kDstrength) {
          for (int64_t c = 0; c < C; ++c) ds[c] += acc_t(px[c]) * nz;
        }
      }
    }
  });
}

Geometry describe(const at::Tensor& x, const at::Tensor& noise) {
  Geometry g;
  g.batch = x.size(0);
  g.channels = x.size(1);
  g.pixels = x.size(2) * x.size(3);
  g.noise_per_sample = noise.size(0) == x.size(0);
  return g;
}

at::Tensor forward(const noise_injection::ForwardArgs& args) {
  const auto& [x, noise, strength] = args;
  const auto format = kernel_memory_format(x);
  at::Tensor y = new_output(x, format);
  if (x.numel() == 0) return y;
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor noise_c = noise.contiguous();
  const at::Tensor strength_c = strength.contiguous();
  const Geometry g = describe(x, noise);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "noise_injection_fwd", [&] {
        const auto run = format == at::MemoryFormat::ChannelsLast ? &forward_nhwc<scalar_t>
                                                                  : &forward_nchw<scalar_t>;
        run(xc.const_data_ptr<scalar_t>(), noise_c.const_data_ptr<scalar_t>(),
            strength_c.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), g);
      });
  return y;
}

noise_injection::BackwardOutputs backward(const noise_injection::BackwardArgs& args) {
  const auto& [dy, noise, strength, compute_dnoise, compute_dstrength] = args;
  at::Tensor dnoise, dstrength;
  if (!noise_injection::new_grads(dy, noise, strength, compute_dnoise, compute_dstrength, dnoise,
                                  dstrength)) {
    return {dnoise, dstrength};
  }
  const auto format = kernel_memory_format(dy);
  const at::Tensor dyc = dy.contiguous(format);
  const at::Tensor noise_c = noise.contiguous();
  const at::Tensor strength_c = strength.contiguous();
  const Geometry g = describe(dy, noise);
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  const int64_t pixels_per_task = std::max<int64_t>(1, kReduceChunk / g.channels);
  const int64_t tasks = channels_last ? ceil_div(g.batch * g.pixels, pixels_per_task)
                                      : g.batch * ceil_div(g.pixels, kPixelTile);
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, dy.scalar_type(), "noise_injection_bwd", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        const auto s = to_opmath(strength_c.const_data_ptr<scalar_t>(), g.channels);
        const bool shared_sum = compute_dnoise && !g.noise_per_sample;
        std::vector<acc_t> per_sample(shared_sum ? g.batch * g.pixels : 0);
        std::vector<acc_t> partials(compute_dstrength ? tasks * g.channels : 0);
        const PixelSink<scalar_t> sink{
            compute_dnoise ? dnoise.mutable_data_ptr<scalar_t>() : nullptr,
            shared_sum ? per_sample.data() : nullptr};
        const scalar_t* dy_ptr = dyc.const_data_ptr<scalar_t>();
        const scalar_t* noise_ptr = noise_c.const_data_ptr<scalar_t>();
        auto dispatch = [&](auto dnoise_tag, auto dstrength_tag) {
          constexpr bool kDn = decltype(dnoise_tag)::value;
          constexpr bool kDs = decltype(dstrength_tag)::value;
          if (channels_last) {
            backward_nhwc<scalar_t, kDn, kDs>(dy_ptr, noise_ptr, s, sink, partials.data(), g,
                                              pixels_per_task);
          } else {
            backward_nchw<scalar_t, kDn, kDs>(dy_ptr, noise_ptr, s, sink, partials.data(), g);
          }
        };
        if (compute_dnoise && compute_dstrength) {
          dispatch(std::true_type{}, std::true_type{});
        } else if (compute_dnoise) {
          dispatch(std::true_type{}, std::false_type{});
        } else {
          dispatch(std::false_type{}, std::true_type{});
        }
        if (shared_sum) {
          scalar_t* out = dnoise.mutable_data_ptr<scalar_t>();
          for (int64_t p = 0; p < g.pixels; ++p) {
            acc_t total = 0;
            for (int64_t n = 0; n < g.batch; ++n) total += per_sample[n * g.pixels + p];
            out[p] = static_cast<scalar_t>(total);
          }
        }
        if (compute_dstrength) {
          std::vector<acc_t> totals(g.channels, acc_t(0));
          for (int64_t k = 0; k < tasks; ++k) {
            const acc_t* part = partials.data() + k * g.channels;
            for (int64_t c = 0; c < g.channels; ++c) totals[c] += part[c];
          }
          scalar_t* out = dstrength.mutable_data_ptr<scalar_t>();
          for (int64_t c = 0; c < g.channels; ++c) out[c] = static_cast<scalar_t>(totals[c]);
        }
      });
  return {dnoise, dstrength};
}

using Cpu = noise_injection::EntryPoints<kLabel, forward, backward>;

}  // namespace

STYLEGAN_FAST_REGISTER_FWD_BWD(noise_injection, CPU, Cpu::fwd, Cpu::bwd)

}  // namespace stylegan_fast
