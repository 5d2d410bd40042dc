// CUDA kernels of stylegan_fast::upfirdn2d_fwd: upsample (zero insertion), pad, FIR filter,
// downsample, with the index math and checks of upfirdn2d.h (shared with upfirdn2d.cpp) and the
// gain folded into the taps. Output m meets its first real input sample at tap
// j0 = first_tap(m * down - pad0, up), input k0 = (m * down - pad0 + j0) / up, then taps
// j0 + i * up meet inputs k0 + i. The backward is this same op (see
// ops/upfirdn2d/registration.py: adjoint_params), so one kernel serves every order.
//
// Tiled: a block owns an output tile of tile_c channels x tile_h rows x tile_w columns, loads
// the input tile plus its halo into shared memory once (as acc_t, zero where the padding or a
// crop puts it outside x: no bounds checks in the inner loops), builds the 2-D weight table
// g * gain once (a 1-D filter becomes its outer product), then computes the tile from shared
// memory. Bytes: each input element comes from DRAM once (the halo rows a neighbouring tile
// shares are L2 hits), each output is written once: the floor is (in + out) * sizeof(scalar).
// Shared-memory traffic is what limits the loop, so:
// - fast kernels (up = 2, down = 1 / up = 1, down = 2 / up = down = 1, 4x4 or 4-tap 1-D
//   filters: StyleGAN's upsample, downsample and blur, and each other's adjoints) give every
//   thread a vertical run of R outputs of one column. Up and down are compile-time, so each
//   run's tap pattern is too: the run walks its input rows once, each row's taps loaded into
//   registers once and used by every output of the run that needs them, with the phase's
//   weights in registers. Shared loads per output: blur 44 / 8 = 5.5 (vs 16 one output at a
//   time), up=2 12 / 8 = 1.5, down=2 40 / 4 = 10 (vs 16).
// - the generic kernel (any up, down, padding, filter size) computes one output at a time.
// Layouts: NCHW tiles are a run of columns of one or more planes, lanes along x (coalesced);
// channels_last tiles are up to 32 channels, lanes along channels (coalesced, and the shared
// tile is [row][col][channel], so lanes read consecutive banks). In NCHW with down = 2 the
// shared tile stores even and odd columns apart, so lanes reading every other column read
// consecutive words instead of 2-way bank conflicts.
#include <torch/library.h>

#include <algorithm>

#include "cuda_utils.cuh"
#include "upfirdn2d.h"

namespace stylegan_fast {
namespace {

using namespace stylegan_fast::cuda;

using upfirdn2d::filter_index;
using upfirdn2d::first_tap;
using upfirdn2d::floor_div;

constexpr Label kLabel{"upfirdn2d", kCudaBackend};

// Filters with more taps than this read their weights from global memory (L1-cached) instead
// of a shared table.
constexpr int kMaxSharedTaps = 4096;
// The default per-block shared memory (no opt-in needed on any architecture).
constexpr int64_t kSharedLimit = 48 * 1024;
constexpr int kThreads = 256;

struct Params {
  const void* x;
  void* y;
  const float* f;
  int64_t xs_n, xs_c, xs_h, xs_w;  // element strides of x
  int64_t ys_n, ys_c, ys_h, ys_w;  // element strides of y
  int64_t N, C;
  int in_h, in_w, out_h, out_w;
  int upx, upy, downx, downy, padx0, pady0;
  int fh, fw;
  bool filter_1d, flip;
  double gain;
  // Tiling
  int tile_c, tile_h, tile_w;
  int in_tile_h, in_tile_w;  // input rows / columns a tile reads (its halo included)
  int load_lanes;            // threads per line when loading a tile (a power of two <= 32)
  // Tile counts are 32-bit in the kernels (launch_tiles checks tiles < 2^30): a 64-bit
  // division there is a call into a slow routine, and ptxas saved registers to local memory
  // around those calls (8-16 B of spill in generic_kernel, -Xptxas -v, sm_90).
  int64_t tiles_c, tiles_h, tiles_w, tiles;
  bool shared_weights;  // weight table in shared memory (else computed from f per tap)
};

// Tap (jy, jx) of the cross-correlation, gain included, computed from f.
template <typename acc_t>
__device__ __forceinline__ acc_t tap_from_filter(const Params& p, int jy, int jx) {
  const int ry = filter_index(jy, p.fh, p.flip);
  const int rx = filter_index(jx, p.fw, p.flip);
  const acc_t g = p.filter_1d ? acc_t(p.f[ry]) * acc_t(p.f[rx]) : acc_t(p.f[ry * p.fw + rx]);
  return g * acc_t(p.gain);
}

template <typename acc_t>
__device__ __forceinline__ void build_weight_table(const Params& p, acc_t* w) {
  for (int t = threadIdx.x; t < p.fh * p.fw; t += blockDim.x) {
    w[t] = tap_from_filter<acc_t>(p, t / p.fw, t % p.fw);
  }
}

// Where tile `tile` starts: sample n, first channel c0, first output row / column.
struct Tile {
  int64_t n, c0;
  int oy0, ox0;
  int ky0, kx0;  // first input row / column of the tile's shared copy
};

__device__ __forceinline__ Tile locate(const Params& p, int tile) {
  Tile t;
  const int tiles_w = static_cast<int>(p.tiles_w), tiles_h = static_cast<int>(p.tiles_h);
  const int tiles_c = static_cast<int>(p.tiles_c);
  const int tx = tile % tiles_w;
  const int ty = (tile / tiles_w) % tiles_h;
  const int tc = (tile / (tiles_w * tiles_h)) % tiles_c;
  t.n = tile / (tiles_w * tiles_h * tiles_c);
  t.c0 = int64_t(tc) * p.tile_c;
  t.oy0 = ty * p.tile_h;
  t.ox0 = tx * p.tile_w;
  t.ky0 = -floor_div(p.pady0 - t.oy0 * p.downy, p.upy);  // ceil((oy0 * downy - pady0) / upy)
  t.kx0 = -floor_div(p.padx0 - t.ox0 * p.downx, p.upx);
  return t;
}

// Position of column `col` within a shared row: columns split by parity when kSplit (NCHW with
// down = 2), so that lanes reading every other column read consecutive words.
template <bool kSplit>
__device__ __forceinline__ int column_slot(int col, int width) {
  if constexpr (kSplit) {
    return (col & 1) * ((width + 1) / 2) + (col >> 1);
  } else {
    return col;
  }
}

// Index of (channel cl, row, column) in the shared input tile.
template <bool kChannelsLast, bool kSplit>
__device__ __forceinline__ int shared_index(const Params& p, int cl, int row, int col) {
  if constexpr (kChannelsLast) {
    return (row * p.in_tile_w + col) * p.tile_c + cl;
  } else {
    return (cl * p.in_tile_h + row) * p.in_tile_w + column_slot<kSplit>(col, p.in_tile_w);
  }
}

// Copies the tile's input (halo included) into shared memory as acc_t, zeros outside x.
// Consecutive threads take consecutive addresses of x: groups of load_lanes threads walk a
// line (a row of one channel in NCHW, the channels of one pixel in NHWC), so that the index
// arithmetic (one division per line) is not paid per element.
template <typename scalar_t, bool kChannelsLast, bool kSplit>
__device__ __forceinline__ void load_tile(const Params& p, const Tile& t,
                                          at::opmath_type<scalar_t>* s) {
  using acc_t = at::opmath_type<scalar_t>;
  const scalar_t* x = static_cast<const scalar_t*>(p.x);
  const int lanes = p.load_lanes;
  const int lane = threadIdx.x % lanes, slots = blockDim.x / lanes;
  const int line_length = kChannelsLast ? p.tile_c : p.in_tile_w;
  const int lines = kChannelsLast ? p.in_tile_h * p.in_tile_w : p.tile_c * p.in_tile_h;
  for (int line = threadIdx.x / lanes; line < lines; line += slots) {
    int row, col = 0, cl = 0;
    if constexpr (kChannelsLast) {
      row = line / p.in_tile_w;
      col = line - row * p.in_tile_w;
    } else {
      cl = line / p.in_tile_h;
      row = line - cl * p.in_tile_h;
    }
    const int ky = t.ky0 + row;
    const bool row_inside = ky >= 0 && ky < p.in_h;
    for (int e = lane; e < line_length; e += lanes) {
      if constexpr (kChannelsLast) {
        cl = e;
      } else {
        col = e;
      }
      const int kx = t.kx0 + col;
      const int64_t c = t.c0 + cl;
      acc_t v = 0;
      if (row_inside && kx >= 0 && kx < p.in_w && c < p.C) {
        v = acc_t(x[t.n * p.xs_n + c * p.xs_c + int64_t(ky) * p.xs_h + int64_t(kx) * p.xs_w]);
      }
      s[shared_index<kChannelsLast, kSplit>(p, cl, row, col)] = v;
    }
  }
}

template <typename scalar_t>
__device__ __forceinline__ void store_output(const Params& p, int64_t n, int64_t c, int oy,
                                             int ox, at::opmath_type<scalar_t> v) {
  scalar_t* y = static_cast<scalar_t*>(p.y);
  y[n * p.ys_n + c * p.ys_c + int64_t(oy) * p.ys_h + int64_t(ox) * p.ys_w] =
      static_cast<scalar_t>(v);
}

// ---------------------------------------------------------------------------------------------
// Generic kernel: any up, down, padding and filter. One output per thread per step.
// kShared: the input tile is in shared memory (else read from global memory with bounds
// checks: a filter too large for any tile to fit).

template <typename scalar_t, bool kChannelsLast, bool kShared>
__global__ void __launch_bounds__(kThreads) generic_kernel(Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  acc_t* w = dynamic_shared<acc_t>();  // fh * fw when shared_weights
  acc_t* s = w + (p.shared_weights ? p.fh * p.fw : 0);
  if (p.shared_weights) {
    build_weight_table(p, w);
  }
  const scalar_t* x = static_cast<const scalar_t*>(p.x);
  const int outputs = p.tile_c * p.tile_h * p.tile_w;
  for (int tile = blockIdx.x; tile < static_cast<int>(p.tiles); tile += gridDim.x) {
    const Tile t = locate(p, tile);
    if constexpr (kShared) {
      __syncthreads();  // the previous tile's reads are done (and the weight table is built)
      load_tile<scalar_t, kChannelsLast, false>(p, t, s);
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < outputs; idx += blockDim.x) {
      int cl, oyl, oxl;
      if constexpr (kChannelsLast) {
        cl = idx % p.tile_c;
        oxl = (idx / p.tile_c) % p.tile_w;
        oyl = idx / (p.tile_c * p.tile_w);
      } else {
        oxl = idx % p.tile_w;
        oyl = (idx / p.tile_w) % p.tile_h;
        cl = idx / (p.tile_w * p.tile_h);
      }
      const int oy = t.oy0 + oyl, ox = t.ox0 + oxl;
      const int64_t c = t.c0 + cl;
      if (oy >= p.out_h || ox >= p.out_w || c >= p.C) continue;
      const int base_y = oy * p.downy - p.pady0;
      const int base_x = ox * p.downx - p.padx0;
      const int jy0 = first_tap(base_y, p.upy);
      const int jx0 = first_tap(base_x, p.upx);
      const int ky_first = (base_y + jy0) / p.upy;  // exact
      const int kx_first = (base_x + jx0) / p.upx;
      acc_t acc = 0;
      int ky = ky_first;
      for (int jy = jy0; jy < p.fh; jy += p.upy, ++ky) {
        int kx = kx_first;
        for (int jx = jx0; jx < p.fw; jx += p.upx, ++kx) {
          acc_t v;
          if constexpr (kShared) {
            v = s[shared_index<kChannelsLast, false>(p, cl, ky - t.ky0, kx - t.kx0)];
          } else {
            v = (ky >= 0 && ky < p.in_h && kx >= 0 && kx < p.in_w)
                    ? acc_t(x[t.n * p.xs_n + c * p.xs_c + int64_t(ky) * p.xs_h +
                              int64_t(kx) * p.xs_w])
                    : acc_t(0);
          }
          const acc_t g = p.shared_weights ? w[jy * p.fw + jx] : tap_from_filter<acc_t>(p, jy, jx);
          acc += v * g;
        }
      }
      store_output<scalar_t>(p, t.n, c, oy, ox, acc);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fast kernels: up = kUp, down = kDown on both axes, a kTaps x kTaps filter (2-D or 1-D), runs
// of kRun outputs down one column per thread.

// The tap pattern of a run along y, all compile-time. The run starts at output m0 whose first
// tap is kPhase; output m0 + t then has first tap first_tap(t), its first input row
// row_offset(t) rows below the run's first, and taps(t) taps.
template <int kUp, int kDown, int kTaps, int kPhase>
struct RunPattern {
  static constexpr int first_tap(int t) { return ((kPhase - t * kDown) % kUp + kUp) % kUp; }
  static constexpr int row_offset(int t) { return (t * kDown + first_tap(t) - kPhase) / kUp; }
  static constexpr int taps(int t) { return (kTaps - first_tap(t) + kUp - 1) / kUp; }
  static constexpr int span(int run) {
    int rows = 0;
    for (int t = 0; t < run; ++t) rows = std::max(rows, row_offset(t) + taps(t));
    return rows;
  }
};

// One run: outputs (row m0 + t, column ox) for t < kRun, of channel cl, into acc. The run's
// first input row is `row0` and the column's first input column `col0` (tile coordinates);
// kPhaseX is the column's first tap along x.
template <int kUp, int kDown, int kTaps, int kRun, int kPhaseY, int kPhaseX, bool kChannelsLast,
          bool kSplit, typename acc_t>
__device__ __forceinline__ void compute_run(const Params& p, const acc_t* s, const acc_t* w,
                                            int cl, int row0, int col0, acc_t (&acc)[kRun]) {
  using Y = RunPattern<kUp, kDown, kTaps, kPhaseY>;
  constexpr int kTapsX = (kTaps - kPhaseX + kUp - 1) / kUp;
  constexpr int kSpan = Y::span(kRun);
  // The weights this phase can use, in registers: rows j, columns kPhaseX + i * kUp.
  acc_t wr[kTaps][kTapsX];
#pragma unroll
  for (int j = 0; j < kTaps; ++j) {
#pragma unroll
    for (int i = 0; i < kTapsX; ++i) wr[j][i] = w[j * kTaps + kPhaseX + i * kUp];
  }
#pragma unroll
  for (int t = 0; t < kRun; ++t) acc[t] = 0;
#pragma unroll
  for (int r = 0; r < kSpan; ++r) {
    acc_t xv[kTapsX];
#pragma unroll
    for (int i = 0; i < kTapsX; ++i) {
      xv[i] = s[shared_index<kChannelsLast, kSplit>(p, cl, row0 + r, col0 + i)];
    }
#pragma unroll
    for (int t = 0; t < kRun; ++t) {
      const int iy = r - Y::row_offset(t);
      if (iy >= 0 && iy < Y::taps(t)) {
        const int jy = Y::first_tap(t) + iy * kUp;
#pragma unroll
        for (int i = 0; i < kTapsX; ++i) acc[t] += xv[i] * wr[jy][i];
      }
    }
  }
}

template <typename scalar_t, bool kChannelsLast, int kUp, int kDown, int kTaps, int kRun>
__global__ void __launch_bounds__(kThreads) fast_kernel(Params p) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool kSplit = !kChannelsLast && kDown == 2;
  acc_t* w = dynamic_shared<acc_t>();  // kTaps * kTaps
  acc_t* s = w + kTaps * kTaps;
  build_weight_table(p, w);
  // Items: (phase of the column, channel, run row, column pair); the column's parity (its x
  // phase when kUp = 2) varies slowest, so whole warps share one tap pattern.
  const int runs_per_col = p.tile_h / kRun;
  const int cols_per_phase = p.tile_w / kUp;
  const int items = p.tile_c * runs_per_col * p.tile_w;
  for (int tile = blockIdx.x; tile < static_cast<int>(p.tiles); tile += gridDim.x) {
    const Tile t = locate(p, tile);
    __syncthreads();  // the previous tile's reads are done (and the weight table is built)
    load_tile<scalar_t, kChannelsLast, kSplit>(p, t, s);
    __syncthreads();
    for (int idx = threadIdx.x; idx < items; idx += blockDim.x) {
      int cl, run, q, pe;
      if constexpr (kChannelsLast) {
        cl = idx % p.tile_c;
        int rest = idx / p.tile_c;
        q = rest % cols_per_phase;
        rest /= cols_per_phase;
        run = rest % runs_per_col;
        pe = rest / runs_per_col;
      } else {
        q = idx % cols_per_phase;
        int rest = idx / cols_per_phase;
        run = rest % runs_per_col;
        rest /= runs_per_col;
        cl = rest % p.tile_c;
        pe = rest / p.tile_c;
      }
      const int oxl = q * kUp + pe, oyl = run * kRun;
      const int ox = t.ox0 + oxl, oy0 = t.oy0 + oyl;
      const int64_t c = t.c0 + cl;
      const int64_t base_y = int64_t(oy0) * kDown - p.pady0;
      const int64_t base_x = int64_t(ox) * kDown - p.padx0;
      const int phase_y = static_cast<int>(first_tap<int64_t>(base_y, kUp));
      const int phase_x = static_cast<int>(first_tap<int64_t>(base_x, kUp));
      const int row0 = static_cast<int>((base_y + phase_y) / kUp) - t.ky0;
      const int col0 = static_cast<int>((base_x + phase_x) / kUp) - t.kx0;
      acc_t acc[kRun];
      // Dispatch the phases to compile-time tap patterns (one pattern when kUp = 1).
      auto run_with = [&](auto py, auto px) {
        compute_run<kUp, kDown, kTaps, kRun, decltype(py)::value, decltype(px)::value,
                    kChannelsLast, kSplit>(p, s, w, cl, row0, col0, acc);
      };
      using Zero = std::integral_constant<int, 0>;
      using One = std::integral_constant<int, 1>;
      if constexpr (kUp == 1) {
        run_with(Zero{}, Zero{});
      } else {
        static_assert(kUp == 2, "fast kernels cover up = 1 and up = 2");
        if (phase_y == 0) {
          if (phase_x == 0) run_with(Zero{}, Zero{});
          else run_with(Zero{}, One{});
        } else {
          if (phase_x == 0) run_with(One{}, Zero{});
          else run_with(One{}, One{});
        }
      }
      if (ox >= p.out_w || c >= p.C) continue;
#pragma unroll
      for (int r = 0; r < kRun; ++r) {
        if (oy0 + r < p.out_h) store_output<scalar_t>(p, t.n, c, oy0 + r, ox, acc[r]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side

int in_tile_extent(int tile, int up, int down, int taps) {
  // An output tile of `tile` samples reads at most ((tile - 1) * down + taps - 1) / up + 1
  // inputs (see the header: the last tap of the last output minus the first of the first).
  return ((tile - 1) * down + taps - 1) / up + 1;
}

int64_t shared_bytes(const Params& p, int64_t acc_size) {
  const int64_t weights = p.shared_weights ? int64_t(p.fh) * p.fw : 0;
  const int64_t tile = int64_t(p.tile_c) * p.in_tile_h * p.in_tile_w;
  return (weights + tile) * acc_size;
}

void finish_tiling(Params& p, bool channels_last) {
  p.in_tile_h = in_tile_extent(p.tile_h, p.upy, p.downy, p.fh);
  p.in_tile_w = in_tile_extent(p.tile_w, p.upx, p.downx, p.fw);
  p.load_lanes = static_cast<int>(
      std::min<int64_t>(32, next_pow2(channels_last ? p.tile_c : p.in_tile_w)));
  p.tiles_c = ceil_div(p.C, p.tile_c);
  p.tiles_h = ceil_div(p.out_h, p.tile_h);
  p.tiles_w = ceil_div(p.out_w, p.tile_w);
  p.tiles = p.N * p.tiles_c * p.tiles_h * p.tiles_w;
}

int pow2_at_most(int64_t v, int cap) {
  return static_cast<int>(std::min<int64_t>(cap, next_pow2(std::max<int64_t>(v, 1))));
}

// Generic tiles: ~1024 outputs (4 per thread); shrunk until the shared tile fits. Returns
// false when not even a single-output tile fits (then the kernel reads global memory).
bool plan_generic(Params& p, bool channels_last, int64_t acc_size) {
  if (channels_last) {
    p.tile_c = pow2_at_most(p.C, 32);
    p.tile_w = pow2_at_most(p.out_w, 8);
    p.tile_h = pow2_at_most(p.out_h, std::max(1, 1024 / (p.tile_c * p.tile_w)));
  } else {
    p.tile_w = pow2_at_most(p.out_w, 64);
    p.tile_h = pow2_at_most(p.out_h, std::max(1, 1024 / p.tile_w));
    p.tile_c = pow2_at_most(p.C, std::max(1, 1024 / (p.tile_w * p.tile_h)));
  }
  finish_tiling(p, channels_last);
  while (shared_bytes(p, acc_size) > kSharedLimit) {
    if (p.tile_h > 1) {
      p.tile_h /= 2;
    } else if (p.tile_w > 1) {
      p.tile_w /= 2;
    } else if (p.tile_c > 1) {
      p.tile_c /= 2;
    } else {
      return false;
    }
    finish_tiling(p, channels_last);
  }
  return true;
}

// Fast tiles: 256 runs (one per thread), tile_w a multiple of up (2 when it must be), tile_h a
// multiple of the run.
void plan_fast(Params& p, bool channels_last, int run, int up, int64_t acc_size) {
  const int min_w = up;
  if (channels_last) {
    p.tile_c = pow2_at_most(p.C, 32);
    p.tile_w = std::max(min_w, pow2_at_most(p.out_w, 8));
    const int runs = pow2_at_most(ceil_div(p.out_h, run), std::max(1, 256 / (p.tile_c * p.tile_w)));
    p.tile_h = runs * run;
  } else {
    p.tile_w = std::max(min_w, pow2_at_most(p.out_w, 64));
    const int runs = pow2_at_most(ceil_div(p.out_h, run), std::max(1, 256 / p.tile_w));
    p.tile_h = runs * run;
    p.tile_c = pow2_at_most(p.C, std::max(1, 256 / (p.tile_w * runs)));
  }
  finish_tiling(p, channels_last);
  while (shared_bytes(p, acc_size) > kSharedLimit) {
    if (p.tile_c > 1) {
      p.tile_c /= 2;
    } else if (p.tile_h > run) {
      p.tile_h = p.tile_h / run / 2 * run;
    } else {
      // A single 64 x 8 run tile of a 4x4 filter needs under 10 KB even in double.
      TORCH_CHECK(p.tile_w > min_w, kLabel, ": internal error: no fast tile fits");
      p.tile_w /= 2;
    }
    finish_tiling(p, channels_last);
  }
}

template <typename Kernel>
void launch_tiles(Kernel kernel, const Params& p, int64_t smem) {
  TORCH_CHECK(p.tiles < (int64_t(1) << 30), kLabel, ": the tensor is too large for one ",
              "launch (", p.tiles, " tiles; at most 2^30)");
  // Fill every SM; shared memory limits residency to ~48 KB per block at worst (4 per SM).
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(p.tiles, int64_t(sm_count()) * 8));
  kernel<<<static_cast<unsigned>(blocks), kThreads, static_cast<size_t>(smem),
           at::cuda::getCurrentCUDAStream()>>>(p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, bool kChannelsLast>
void run_upfirdn2d(Params& p) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t acc_size = sizeof(acc_t);
  const bool symmetric = p.upx == p.upy && p.downx == p.downy && p.fh == p.fw;
  const bool four_taps = symmetric && p.fh == 4;
  auto fast = [&](auto up, auto down, auto run) {
    constexpr int kUp = decltype(up)::value, kDown = decltype(down)::value;
    constexpr int kRun = decltype(run)::value;
    p.shared_weights = true;
    plan_fast(p, kChannelsLast, kRun, kUp, acc_size);
    launch_tiles(fast_kernel<scalar_t, kChannelsLast, kUp, kDown, 4, kRun>, p,
                 shared_bytes(p, acc_size));
  };
  using I1 = std::integral_constant<int, 1>;
  using I2 = std::integral_constant<int, 2>;
  using I4 = std::integral_constant<int, 4>;
  using I8 = std::integral_constant<int, 8>;
  if (four_taps && p.upx == 2 && p.downx == 1) return fast(I2{}, I1{}, I8{});
  if (four_taps && p.upx == 1 && p.downx == 2) return fast(I1{}, I2{}, I4{});
  if (four_taps && p.upx == 1 && p.downx == 1) return fast(I1{}, I1{}, I8{});
  p.shared_weights = int64_t(p.fh) * p.fw <= kMaxSharedTaps;
  if (plan_generic(p, kChannelsLast, acc_size)) {
    launch_tiles(generic_kernel<scalar_t, kChannelsLast, true>, p, shared_bytes(p, acc_size));
    return;
  }
  p.tile_c = 1;
  p.tile_h = pow2_at_most(p.out_h, 16);
  p.tile_w = pow2_at_most(p.out_w, 16);
  finish_tiling(p, kChannelsLast);
  const int64_t weights = p.shared_weights ? int64_t(p.fh) * p.fw * acc_size : 0;
  launch_tiles(generic_kernel<scalar_t, kChannelsLast, false>, p, weights);
}

at::Tensor upfirdn2d_fwd_cuda(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy,
                              int64_t downx, int64_t downy, int64_t padx0, int64_t padx1,
                              int64_t pady0, int64_t pady1, bool flip_filter, double gain) {
  upfirdn2d::check_inputs(kLabel, x, f, upx, upy, downx, downy);
  const int64_t fh = f.size(0), fw = f.size(-1);
  // Tile coordinates are 32-bit: every factor, padding and extent must stay below 2^30 (so
  // that no product below overflows either).
  auto fits = [](int64_t v) { return std::abs(v) < (int64_t(1) << 30); };
  TORCH_CHECK(fits(upx) && fits(upy) && fits(downx) && fits(downy) && fits(padx0) &&
                  fits(padx1) && fits(pady0) && fits(pady1) && fits(fh) && fits(fw) &&
                  fits(x.size(2) * upy + std::abs(pady0) + std::abs(pady1) + fh) &&
                  fits(x.size(3) * upx + std::abs(padx0) + std::abs(padx1) + fw),
              kLabel, ": sizes times up factors plus padding must stay below 2^30");
  const auto [out_h, out_w] = upfirdn2d::checked_output_size(kLabel, x, f, upx, upy, downx, downy,
                                                             padx0, padx1, pady0, pady1);
  TORCH_CHECK(fits(out_h * downy + std::abs(pady0) + fh) &&
                  fits(out_w * downx + std::abs(padx0) + fw),
              kLabel, ": output sizes times down factors must stay below 2^30");
  const c10::cuda::CUDAGuard guard(x.device());
  const auto format = kernel_memory_format(x);
  const at::Tensor xc = x.contiguous(format);
  const at::Tensor fc = f.contiguous();
  at::Tensor y = new_output({x.size(0), x.size(1), out_h, out_w}, x.options().memory_format(format));
  if (y.numel() == 0) return y;

  Params p{};
  p.x = xc.const_data_ptr();
  p.y = y.mutable_data_ptr();
  p.f = fc.const_data_ptr<float>();
  p.xs_n = xc.stride(0), p.xs_c = xc.stride(1), p.xs_h = xc.stride(2), p.xs_w = xc.stride(3);
  p.ys_n = y.stride(0), p.ys_c = y.stride(1), p.ys_h = y.stride(2), p.ys_w = y.stride(3);
  p.N = x.size(0), p.C = x.size(1);
  p.in_h = static_cast<int>(x.size(2)), p.in_w = static_cast<int>(x.size(3));
  p.out_h = static_cast<int>(out_h), p.out_w = static_cast<int>(out_w);
  p.upx = static_cast<int>(upx), p.upy = static_cast<int>(upy);
  p.downx = static_cast<int>(downx), p.downy = static_cast<int>(downy);
  p.padx0 = static_cast<int>(padx0), p.pady0 = static_cast<int>(pady0);
  p.fh = static_cast<int>(fh), p.fw = static_cast<int>(fw);
  p.filter_1d = f.dim() == 1;
  p.flip = flip_filter;
  p.gain = gain;
  const bool channels_last = format == at::MemoryFormat::ChannelsLast;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d_fwd_cuda",
                                  [&] {
    if (channels_last) {
      run_upfirdn2d<scalar_t, true>(p);
    } else {
      run_upfirdn2d<scalar_t, false>(p);
    }
  });
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(stylegan_fast, CUDA, m) { m.impl("upfirdn2d_fwd", &upfirdn2d_fwd_cuda); }

}  // namespace stylegan_fast
