// CPU kernels of stylegan_fast::upfirdn2d_fwd: upsample (zero insertion), pad, FIR filter,
// downsample, computed polyphase (the index math and checks of upfirdn2d.h, shared with
// upfirdn2d_cuda.cu). Output m visits only the taps that land on real input samples, the taps
// j0, j0 + up, ... meeting inputs k0, k0 + 1, ... (one arithmetic run per output sample).
//
// Two traversals, both accumulating V = 64 bytes of acc_t (16 floats, 8 doubles) at a time in
// registers (LaneAcc):
// - rows (NCHW with wide rows): along a row the outputs fall into P = up / gcd(up, down)
//   phases m = r + t * P that each see one fixed set of taps, and a tap of phase r walks the
//   input with stride S = down / gcd(up, down) as t grows. With the input row split into S
//   strided phases and each output phase accumulated contiguously, every tap is a unit-stride
//   multiply-add over V consecutive t; the phases are interleaved when the row is written.
// - lanes (NHWC, and NCHW with narrow rows): V planes (n, c) side by side are the vector;
//   each output pixel is a multiply-add of V lanes per tap. NHWC float/double with C a
//   multiple of V reads and writes the lanes in place; everything else goes through bands of
//   rows gathered into lanes.
// A separable filter (1-D, or a 2-D filter that is an outer product to acc_t's precision, as
// setup_filter makes for 4 taps) is applied along x at the input rows into a temporary, then
// along y. Taps and sums are float (double for double inputs); each output is rounded once.
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "upfirdn2d.h"

namespace stylegan_fast {
namespace {

using upfirdn2d::filter_index;
using upfirdn2d::floor_div;
using upfirdn2d::floor_mod;

constexpr Label kLabel{"upfirdn2d", kCppBackend};

template <typename acc_t>
constexpr int kLanes = 64 / sizeof(acc_t);

// kLanes accumulators as native 16-byte vectors (GCC/Clang vector extensions): written this
// way they stay in registers across the tap loop (an acc_t[V] loop is vectorised across the
// taps instead and kept on the stack: 4.7x slower for the 4x4 blur).
template <typename acc_t>
struct LaneAcc {
  typedef acc_t vec __attribute__((vector_size(16)));
  static constexpr int kPerVec = 16 / sizeof(acc_t);
  static constexpr int kVecs = kLanes<acc_t> / kPerVec;
  vec v[kVecs];

  LaneAcc() {
    for (int i = 0; i < kVecs; ++i) v[i] = vec{};
  }
  inline void multiply_add(const acc_t* src, acc_t w) {
#pragma GCC unroll 8
    for (int i = 0; i < kVecs; ++i) {
      vec s;
      std::memcpy(&s, src + i * kPerVec, sizeof(vec));
      v[i] += w * s;
    }
  }
  inline void store(acc_t* dst) const { std::memcpy(dst, v, sizeof(v)); }
};

struct Axis {
  int64_t in = 0, out = 0, up = 1, down = 1, pad0 = 0, taps = 1;
};

// The taps of output sample m: inputs k_start + i meet taps j_start + i * up, i < count.
struct TapRun {
  int64_t k_start = 0, j_start = 0, count = 0;
};

std::vector<TapRun> plan_runs(const Axis& a) {
  std::vector<TapRun> runs(a.out);
  for (int64_t m = 0; m < a.out; ++m) {
    // The taps that meet upsampled samples within [0, in * up): [lo, hi).
    const int64_t base = m * a.down - a.pad0;
    const int64_t lo = std::max<int64_t>(0, -base);
    const int64_t hi = std::min<int64_t>(a.taps, a.in * a.up - base);
    const int64_t j0 = upfirdn2d::first_tap(base, a.up, lo);
    if (j0 < hi) runs[m] = {(base + j0) / a.up, j0, ceil_div(hi - j0, a.up)};
  }
  return runs;
}

// The most input rows one output row reads (at least 1).
int64_t max_tap_count(const std::vector<TapRun>& runs) {
  int64_t most = 1;
  for (const TapRun& run : runs) most = std::max(most, run.count);
  return most;
}

// Output rows are computed in bands [m0, m1), one band per task: as many whole rows as hold
// about `elements` outputs, fewer when the `outer` tasks (planes, images) times the bands would
// not keep every thread busy. Every band filters the rows it shares with the next one again, so
// bands stay at least kMinBandRows tall. Only the split of the work depends on the thread
// count, never a result.
struct Bands {
  int64_t rows = 1, count = 1;
};

constexpr int64_t kMinBandRows = 8;

Bands plan_bands(int64_t out_h, int64_t row_elements, int64_t elements, int64_t outer) {
  Bands b;
  b.rows = std::clamp<int64_t>(ceil_div(elements, std::max<int64_t>(1, row_elements)), 1, out_h);
  const int64_t wanted_bands = ceil_div(2 * at::get_num_threads(), std::max<int64_t>(1, outer));
  b.rows = std::min(b.rows, std::max(kMinBandRows, ceil_div(out_h, wanted_bands)));
  b.count = ceil_div(out_h, b.rows);
  return b;
}

// Per-row intermediates (an input row split or gathered, or filtered along x), each computed
// once, when the first output row that reads it comes, in a ring of as many rows as one output
// row reads: the rows an output row reads are consecutive and move forward with it, so the
// ring stays small enough for L1/L2 whatever the band (a band-sized temporary went through
// memory and made the channels_last blur 1.7x slower).
template <typename acc_t>
class RowRing {
 public:
  RowRing(int64_t slots, int64_t row_len)
      : data_(slots * row_len), slots_(slots), row_len_(row_len) {}

  void restart() { next_ = 0; }

  // Makes rows [first, last) available, computing the missing ones with fill(k, row).
  template <typename Fill>
  void ensure(int64_t first, int64_t last, Fill&& fill) {
    next_ = std::max(next_, first);
    for (; next_ < last; ++next_) fill(next_, row(next_));
  }

  acc_t* row(int64_t k) { return data_.data() + (k % slots_) * row_len_; }

 private:
  std::vector<acc_t> data_;
  int64_t slots_, row_len_, next_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Taps

// The filter as cross-correlation taps in acc_t with the gain applied: 2-D (xy, [fh * fw]), or
// separable (x and y passes).
template <typename acc_t>
struct Taps {
  std::vector<acc_t> xy, x, y;
  bool separable() const { return xy.empty(); }
};

// A 2-D filter f[j][i] == u[j] * v[i] to within `rel` at every tap: returns u (column through
// the largest tap) and v (its row, divided by that tap), else nothing.
bool outer_product_factors(const float* f, int64_t fh, int64_t fw, double rel,
                           std::vector<double>& u, std::vector<double>& v) {
  int64_t pivot = 0;
  for (int64_t i = 0; i < fh * fw; ++i) {
    if (!std::isfinite(f[i])) return false;
    if (std::abs(f[i]) > std::abs(f[pivot])) pivot = i;
  }
  const double p = f[pivot];
  if (p == 0) return false;
  const int64_t pr = pivot / fw, pc = pivot % fw;
  u.resize(fh);
  v.resize(fw);
  for (int64_t j = 0; j < fh; ++j) u[j] = f[j * fw + pc];
  for (int64_t i = 0; i < fw; ++i) v[i] = f[pr * fw + i] / p;
  for (int64_t j = 0; j < fh; ++j) {
    for (int64_t i = 0; i < fw; ++i) {
      const double t = f[j * fw + i];
      if (std::abs(t - u[j] * v[i]) > rel * std::abs(t)) return false;
    }
  }
  return true;
}

template <typename acc_t>
Taps<acc_t> make_taps(const at::Tensor& f, bool flip_filter, double gain) {
  const at::Tensor fc = f.contiguous();
  const float* data = fc.const_data_ptr<float>();
  const int64_t fh = f.size(0), fw = f.size(-1);
  Taps<acc_t> t;
  auto tap = [&](const auto& taps, int64_t n, int64_t j) {
    return taps[filter_index(j, n, flip_filter)];
  };
  if (f.dim() == 1) {
    // Each pass carries |gain| ** 0.5; the x pass also carries the sign, as the reference.
    const double root = std::sqrt(std::abs(gain));
    for (int64_t j = 0; j < fh; ++j) {
      t.x.push_back(acc_t(tap(data, fh, j)) * acc_t(gain < 0 ? -root : root));
      t.y.push_back(acc_t(tap(data, fh, j)) * acc_t(root));
    }
    return t;
  }
  // Four rounding errors of acc_t: a float32 outer product qualifies in float, and in double
  // only an exact one (such as [1, 3, 3, 1] ⊗ [1, 3, 3, 1] / 64) does.
  std::vector<double> u, v;
  const double rel = 4 * std::numeric_limits<acc_t>::epsilon();
  if (fh > 1 && fw > 1 && outer_product_factors(data, fh, fw, rel, u, v)) {
    for (int64_t i = 0; i < fw; ++i) t.x.push_back(acc_t(tap(v, fw, i)));
    for (int64_t j = 0; j < fh; ++j) t.y.push_back(acc_t(tap(u, fh, j) * gain));
    return t;
  }
  for (int64_t j = 0; j < fh; ++j) {
    for (int64_t i = 0; i < fw; ++i) {
      const int64_t src =
          filter_index(j, fh, flip_filter) * fw + filter_index(i, fw, flip_filter);
      t.xy.push_back(acc_t(data[src]) * acc_t(gain));
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Rows traversal (NCHW)

// One tap of one output phase: out_phase[t] += g[tap] * split_row[src0 + t], t_begin <= t < t_end.
struct Segment {
  int64_t tap = 0, src0 = 0, t_begin = 0, t_end = 0;
};

struct RowPlan {
  int64_t phases = 1;  // P: output phases
  int64_t stride = 1;  // S: input phases
  std::vector<int64_t> out_phase_start;  // offset of output phase r in a phase-separated row
  std::vector<int64_t> in_phase_start;   // offset of input phase q in a split row
  std::vector<int64_t> segments_start;   // phase r's segments: [start[r], start[r + 1])
  std::vector<Segment> segments;
  std::vector<int64_t> interior_begin, interior_end;  // t every segment of phase r covers
};

RowPlan plan_row(const Axis& a) {
  RowPlan p;
  const int64_t g = std::gcd(a.up, a.down);
  p.phases = a.up / g;
  p.stride = a.down / g;
  p.in_phase_start.assign(p.stride + 1, 0);
  for (int64_t q = 0; q < p.stride; ++q) {
    p.in_phase_start[q + 1] =
        p.in_phase_start[q] + std::max<int64_t>(0, ceil_div(a.in - q, p.stride));
  }
  p.out_phase_start.assign(p.phases + 1, 0);
  p.segments_start.assign(p.phases + 1, 0);
  for (int64_t r = 0; r < p.phases; ++r) {
    const int64_t len = std::max<int64_t>(0, ceil_div(a.out - r, p.phases));
    p.out_phase_start[r + 1] = p.out_phase_start[r] + len;
    int64_t lo = 0, hi = len;
    const int64_t base = r * a.down - a.pad0;
    for (int64_t j = 0; j < a.taps; ++j) {
      if (floor_mod(base + j, a.up) != 0) continue;
      // Output r + t * P meets input k0 + t * S.
      const int64_t k0 = (base + j) / a.up;
      const int64_t t_begin = std::max<int64_t>(0, -floor_div(k0, p.stride));
      const int64_t t_end = std::min<int64_t>(len, floor_div(a.in - 1 - k0, p.stride) + 1);
      if (t_begin >= t_end) continue;
      const int64_t src0 = p.in_phase_start[floor_mod(k0, p.stride)] + floor_div(k0, p.stride);
      p.segments.push_back({j, src0, t_begin, t_end});
      lo = std::max(lo, t_begin);
      hi = std::min(hi, t_end);
    }
    p.segments_start[r + 1] = static_cast<int64_t>(p.segments.size());
    p.interior_begin.push_back(lo);
    p.interior_end.push_back(std::max(lo, hi));
  }
  return p;
}

// A split input row and the taps (indexed by Segment::tap) it is filtered with.
template <typename acc_t>
struct WeightedRow {
  const acc_t* src;
  const acc_t* taps;
};

// dst (phase-separated, a.out long) = sum over rows of the row filtered along x.
template <typename acc_t>
void filter_along_x(const RowPlan& plan, const WeightedRow<acc_t>* rows, int64_t n_rows,
                    acc_t* dst) {
  constexpr int V = kLanes<acc_t>;
  for (int64_t r = 0; r < plan.phases; ++r) {
    const Segment* segs = plan.segments.data() + plan.segments_start[r];
    const int64_t n_segs = plan.segments_start[r + 1] - plan.segments_start[r];
    acc_t* out = dst + plan.out_phase_start[r];
    const int64_t len = plan.out_phase_start[r + 1] - plan.out_phase_start[r];
    auto one = [&](int64_t t) {
      acc_t sum = 0;
      for (int64_t i = 0; i < n_rows; ++i) {
        for (int64_t s = 0; s < n_segs; ++s) {
          if (t >= segs[s].t_begin && t < segs[s].t_end) {
            sum += rows[i].taps[segs[s].tap] * rows[i].src[segs[s].src0 + t];
          }
        }
      }
      out[t] = sum;
    };
    auto block = [&](int64_t t) {
      LaneAcc<acc_t> acc;
      for (int64_t i = 0; i < n_rows; ++i) {
        for (int64_t s = 0; s < n_segs; ++s) {
          acc.multiply_add(rows[i].src + segs[s].src0 + t, rows[i].taps[segs[s].tap]);
        }
      }
      acc.store(out + t);
    };
    const int64_t lo = plan.interior_begin[r], hi = plan.interior_end[r];
    for (int64_t t = 0; t < lo; ++t) one(t);
    int64_t t = lo;
    for (; t + V <= hi; t += V) block(t);
    // The interior's tail as one more block overlapping the previous one (recomputing a few
    // outputs beats computing the tail one sample at a time).
    if (t < hi && hi - lo >= V) {
      block(hi - V);
      t = hi;
    }
    for (; t < len; ++t) one(t);
  }
}

// dst[0, n) = sum_i w[i] * rows[i][0, n).
template <typename acc_t>
void weighted_row_sum(const acc_t* const* rows, const acc_t* w, int64_t n_rows, int64_t n,
                      acc_t* dst) {
  constexpr int V = kLanes<acc_t>;
  auto block = [&](int64_t t) {
    LaneAcc<acc_t> acc;
    for (int64_t i = 0; i < n_rows; ++i) acc.multiply_add(rows[i] + t, w[i]);
    acc.store(dst + t);
  };
  int64_t t = 0;
  for (; t + V <= n; t += V) block(t);
  if (t < n && n >= V) {
    block(n - V);
    t = n;
  }
  for (; t < n; ++t) {
    acc_t sum = 0;
    for (int64_t i = 0; i < n_rows; ++i) sum += w[i] * rows[i][t];
    dst[t] = sum;
  }
}

template <typename scalar_t>
void forward_rows(const scalar_t* x, scalar_t* y, int64_t planes, const Axis& ax, const Axis& ay,
                  const Taps<at::opmath_type<scalar_t>>& taps) {
  using acc_t = at::opmath_type<scalar_t>;
  const RowPlan plan = plan_row(ax);
  const std::vector<TapRun> runs_y = plan_runs(ay);
  const bool separable = taps.separable();
  // Rows are read in place when they need neither splitting nor conversion, and written in
  // place when they need no interleaving or conversion.
  const bool read_in_place = plan.stride == 1 && std::is_same_v<scalar_t, acc_t>;
  const bool write_in_place = plan.phases == 1 && std::is_same_v<scalar_t, acc_t>;
  const Bands bands = plan_bands(ay.out, ax.out, 8 * kGrain, planes);
  const int64_t slots = max_tap_count(runs_y);
  at::parallel_for(0, planes * bands.count, 1, [&](int64_t task0, int64_t task1) {
    // Split rows: a ring of them for a 2-D filter; one at a time for a separable one.
    RowRing<acc_t> split(read_in_place ? 0 : (separable ? 1 : slots), ax.in);
    RowRing<acc_t> filtered_x(separable ? slots : 0, ax.out);
    std::vector<acc_t> out_row(write_in_place ? 0 : ax.out);
    std::vector<const acc_t*> row_ptrs(slots);
    std::vector<acc_t> row_weights(slots);
    std::vector<WeightedRow<acc_t>> weighted(slots);
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t plane = task / bands.count, band = task % bands.count;
      const int64_t m0 = band * bands.rows, m1 = std::min(ay.out, m0 + bands.rows);
      const scalar_t* xp = x + plane * ay.in * ax.in;
      scalar_t* yp = y + plane * ay.out * ax.out;
      split.restart();
      filtered_x.restart();
      auto split_row = [&](int64_t k, acc_t* dst) {
        const scalar_t* src = xp + k * ax.in;
        for (int64_t q = 0; q < plan.stride; ++q) {
          acc_t* dq = dst + plan.in_phase_start[q];
          const int64_t n = plan.in_phase_start[q + 1] - plan.in_phase_start[q];
          for (int64_t i = 0; i < n; ++i) dq[i] = acc_t(src[q + i * plan.stride]);
        }
      };
      auto input_row = [&](int64_t k) -> const acc_t* {
        if constexpr (std::is_same_v<scalar_t, acc_t>) {
          if (read_in_place) return xp + k * ax.in;
        }
        if (separable) {
          split.restart();
          split.ensure(k, k + 1, split_row);
        }
        return split.row(k);
      };
      auto filter_row_x = [&](int64_t k, acc_t* dst) {
        const WeightedRow<acc_t> row{input_row(k), taps.x.data()};
        filter_along_x(plan, &row, 1, dst);
      };
      for (int64_t m = m0; m < m1; ++m) {
        const TapRun& run = runs_y[m];
        acc_t* dst = out_row.data();
        if constexpr (std::is_same_v<scalar_t, acc_t>) {
          if (write_in_place) dst = yp + m * ax.out;
        }
        if (separable) {
          filtered_x.ensure(run.k_start, run.k_start + run.count, filter_row_x);
          for (int64_t i = 0; i < run.count; ++i) {
            row_ptrs[i] = filtered_x.row(run.k_start + i);
            row_weights[i] = taps.y[run.j_start + i * ay.up];
          }
          weighted_row_sum(row_ptrs.data(), row_weights.data(), run.count, ax.out, dst);
        } else {
          if (!read_in_place) split.ensure(run.k_start, run.k_start + run.count, split_row);
          for (int64_t i = 0; i < run.count; ++i) {
            weighted[i] = {input_row(run.k_start + i),
                           taps.xy.data() + (run.j_start + i * ay.up) * ax.taps};
          }
          filter_along_x(plan, weighted.data(), run.count, dst);
        }
        if (write_in_place) continue;
        scalar_t* out = yp + m * ax.out;
        for (int64_t r = 0; r < plan.phases; ++r) {
          const acc_t* a = out_row.data() + plan.out_phase_start[r];
          const int64_t n = plan.out_phase_start[r + 1] - plan.out_phase_start[r];
          for (int64_t t = 0; t < n; ++t) out[r + t * plan.phases] = static_cast<scalar_t>(a[t]);
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Lanes traversals (NHWC; NCHW with narrow rows)

// NHWC in place (acc_t data, C a multiple of V): each pixel's channels are V-lane groups
// already. Channel groups are the innermost loop, so a pixel's channels are read together,
// sequentially (one group at a time over a whole band streamed each pixel's cache lines
// separately and stalled on memory: 1.9x slower for the [4, 64, 64, 64] blur).
template <typename acc_t>
void forward_nhwc(const acc_t* x, acc_t* y, int64_t batch, int64_t channels, const Axis& ax,
                  const Axis& ay, const Taps<acc_t>& taps) {
  constexpr int V = kLanes<acc_t>;
  const int64_t C = channels, groups = channels / V;
  const std::vector<TapRun> runs_x = plan_runs(ax), runs_y = plan_runs(ay);
  const bool separable = taps.separable();
  const Bands bands = plan_bands(ay.out, ax.out * C, 8 * kGrain, batch);
  const int64_t x_row = ax.in * C, y_row = ax.out * C;
  at::parallel_for(0, batch * bands.count, 1, [&](int64_t task0, int64_t task1) {
    RowRing<acc_t> filtered_x(separable ? max_tap_count(runs_y) : 0, ax.out * C);
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t n = task / bands.count, band = task % bands.count;
      const int64_t m0 = band * bands.rows, m1 = std::min(ay.out, m0 + bands.rows);
      const acc_t* xn = x + n * ay.in * x_row;
      acc_t* yn = y + n * ay.out * y_row;
      filtered_x.restart();
      auto filter_row_x = [&](int64_t k, acc_t* dst) {
        const acc_t* src = xn + k * x_row;
        for (int64_t mx = 0; mx < ax.out; ++mx) {
          const TapRun& rx = runs_x[mx];
          for (int64_t g = 0; g < groups; ++g) {
            LaneAcc<acc_t> acc;
            for (int64_t i = 0; i < rx.count; ++i) {
              acc.multiply_add(src + (rx.k_start + i) * C + g * V,
                               taps.x[rx.j_start + i * ax.up]);
            }
            acc.store(dst + mx * C + g * V);
          }
        }
      };
      for (int64_t m = m0; m < m1; ++m) {
        const TapRun& ry = runs_y[m];
        if (separable) filtered_x.ensure(ry.k_start, ry.k_start + ry.count, filter_row_x);
        for (int64_t mx = 0; mx < ax.out; ++mx) {
          const TapRun& rx = runs_x[mx];
          for (int64_t g = 0; g < groups; ++g) {
            LaneAcc<acc_t> acc;
            for (int64_t iy = 0; iy < ry.count; ++iy) {
              const int64_t k = ry.k_start + iy, jy = ry.j_start + iy * ay.up;
              if (separable) {
                acc.multiply_add(filtered_x.row(k) + mx * C + g * V, taps.y[jy]);
                continue;
              }
              const acc_t* src = xn + k * x_row + g * V;
              const acc_t* gy = taps.xy.data() + jy * ax.taps;
              for (int64_t i = 0; i < rx.count; ++i) {
                acc.multiply_add(src + (rx.k_start + i) * C, gy[rx.j_start + i * ax.up]);
              }
            }
            acc.store(yn + m * y_row + mx * C + g * V);
          }
        }
      }
    }
  });
}

// Element strides of a dense 4-D tensor, whichever its memory format.
struct Strides {
  int64_t n, c, h, w;
};

Strides strides_of(const at::Tensor& t) {
  return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)};
}

// Any layout and dtype: V planes (n, c) at a time are gathered, row by row, into
// row[col][lane] in acc_t, filtered, and scattered back.
template <typename scalar_t>
void forward_gathered(const scalar_t* x, scalar_t* y, int64_t batch, int64_t channels,
                      const Strides& xs, const Strides& ys, const Axis& ax, const Axis& ay,
                      const Taps<at::opmath_type<scalar_t>>& taps) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int V = kLanes<acc_t>;
  const std::vector<TapRun> runs_x = plan_runs(ax), runs_y = plan_runs(ay);
  const bool separable = taps.separable();
  const int64_t planes = batch * channels;
  const int64_t groups = ceil_div(planes, V);
  const Bands bands = plan_bands(ay.out, ax.out * V, 8 * kGrain, groups);
  const int64_t slots = max_tap_count(runs_y);
  at::parallel_for(0, groups * bands.count, 1, [&](int64_t task0, int64_t task1) {
    // Gathered rows: a ring of them for a 2-D filter; one at a time for a separable one.
    RowRing<acc_t> gathered(separable ? 1 : slots, ax.in * V);
    RowRing<acc_t> filtered_x(separable ? slots : 0, ax.out * V);
    std::vector<acc_t> out_row(ax.out * V);
    int64_t x_base[V], y_base[V];
    for (int64_t task = task0; task < task1; ++task) {
      const int64_t group = task / bands.count, band = task % bands.count;
      const int64_t lanes = std::min<int64_t>(V, planes - group * V);
      for (int64_t l = 0; l < lanes; ++l) {
        const int64_t n = (group * V + l) / channels, c = (group * V + l) % channels;
        x_base[l] = n * xs.n + c * xs.c;
        y_base[l] = n * ys.n + c * ys.c;
      }
      const int64_t m0 = band * bands.rows, m1 = std::min(ay.out, m0 + bands.rows);
      gathered.restart();
      filtered_x.restart();
      auto gather_row = [&](int64_t k, acc_t* dst) {
        // Lanes past the last plane are zeros, computed and dropped.
        if (lanes < V) std::fill(dst, dst + ax.in * V, acc_t(0));
        if (xs.w == 1) {
          for (int64_t l = 0; l < lanes; ++l) {
            const scalar_t* src = x + x_base[l] + k * xs.h;
            for (int64_t i = 0; i < ax.in; ++i) dst[i * V + l] = acc_t(src[i]);
          }
        } else {
          for (int64_t i = 0; i < ax.in; ++i) {
            for (int64_t l = 0; l < lanes; ++l) {
              dst[i * V + l] = acc_t(x[x_base[l] + k * xs.h + i * xs.w]);
            }
          }
        }
      };
      auto filter_row_x = [&](int64_t k, acc_t* dst) {
        gathered.restart();
        gathered.ensure(k, k + 1, gather_row);
        const acc_t* src = gathered.row(k);
        for (int64_t mx = 0; mx < ax.out; ++mx) {
          LaneAcc<acc_t> acc;
          const TapRun& rx = runs_x[mx];
          for (int64_t i = 0; i < rx.count; ++i) {
            acc.multiply_add(src + (rx.k_start + i) * V, taps.x[rx.j_start + i * ax.up]);
          }
          acc.store(dst + mx * V);
        }
      };
      for (int64_t m = m0; m < m1; ++m) {
        const TapRun& ry = runs_y[m];
        if (separable) {
          filtered_x.ensure(ry.k_start, ry.k_start + ry.count, filter_row_x);
        } else {
          gathered.ensure(ry.k_start, ry.k_start + ry.count, gather_row);
        }
        for (int64_t mx = 0; mx < ax.out; ++mx) {
          LaneAcc<acc_t> acc;
          for (int64_t iy = 0; iy < ry.count; ++iy) {
            const int64_t k = ry.k_start + iy, jy = ry.j_start + iy * ay.up;
            if (separable) {
              acc.multiply_add(filtered_x.row(k) + mx * V, taps.y[jy]);
              continue;
            }
            const acc_t* src = gathered.row(k);
            const acc_t* g = taps.xy.data() + jy * ax.taps;
            const TapRun& rx = runs_x[mx];
            for (int64_t i = 0; i < rx.count; ++i) {
              acc.multiply_add(src + (rx.k_start + i) * V, g[rx.j_start + i * ax.up]);
            }
          }
          acc.store(out_row.data() + mx * V);
        }
        if (ys.w == 1) {
          for (int64_t l = 0; l < lanes; ++l) {
            scalar_t* dst = y + y_base[l] + m * ys.h;
            for (int64_t mx = 0; mx < ax.out; ++mx) {
              dst[mx] = static_cast<scalar_t>(out_row[mx * V + l]);
            }
          }
        } else {
          for (int64_t mx = 0; mx < ax.out; ++mx) {
            for (int64_t l = 0; l < lanes; ++l) {
              y[y_base[l] + m * ys.h + mx * ys.w] = static_cast<scalar_t>(out_row[mx * V + l]);
            }
          }
        }
      }
    }
  });
}

// NCHW rows narrower than this are gathered into lanes: a row traversal of short rows is mostly its
// scalar edges.
constexpr int64_t kMinRowsWidth = 32;

at::Tensor upfirdn2d_fwd_cpu(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy,
                             int64_t downx, int64_t downy, int64_t padx0, int64_t padx1,
                             int64_t pady0, int64_t pady1, bool flip_filter, double gain) {
  upfirdn2d::check_inputs(kLabel, x, f, upx, upy, downx, downy);
  const upfirdn2d::OutputSize size = upfirdn2d::checked_output_size(
      kLabel, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1);
  const Axis ax{x.size(3), size.w, upx, downx, padx0, f.size(-1)};
  const Axis ay{x.size(2), size.h, upy, downy, pady0, f.size(0)};
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  at::Tensor y = new_output({x.size(0), x.size(1), ay.out, ax.out},
                            x.options().memory_format(format));
  if (y.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d_fwd", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const Taps<acc_t> taps = make_taps<acc_t>(f, flip_filter, gain);
    const scalar_t* in = xc.const_data_ptr<scalar_t>();
    scalar_t* out = y.mutable_data_ptr<scalar_t>();
    const int64_t batch = x.size(0), channels = x.size(1);
    if (format == at::MemoryFormat::Contiguous && ax.out >= kMinRowsWidth) {
      forward_rows<scalar_t>(in, out, batch * channels, ax, ay, taps);
      return;
    }
    // (The lambda is not a template, so the cast keeps the other dtypes' branch compiling.)
    if (std::is_same_v<scalar_t, acc_t> && format == at::MemoryFormat::ChannelsLast &&
        channels % kLanes<acc_t> == 0) {
      forward_nhwc<acc_t>(reinterpret_cast<const acc_t*>(in), reinterpret_cast<acc_t*>(out),
                          batch, channels, ax, ay, taps);
      return;
    }
    forward_gathered<scalar_t>(in, out, batch, channels, strides_of(xc), strides_of(y), ax, ay,
                               taps);
  });
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(stylegan_fast, CPU, m) { m.impl("upfirdn2d_fwd", &upfirdn2d_fwd_cpu); }

}  // namespace stylegan_fast
