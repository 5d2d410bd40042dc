// CPU driver for tests/ops/test_cuda_plans.py: runs the plan and merge math of the CUDA kernels
// (csrc/plane_stats.h, csrc/columns_plan.h: the very functions the kernels call, compiled here
// with the host compiler) and prints what the test checks. One query per stdin line, one
// answer line per query, "key=value" pairs separated by spaces.
//
//   merge PATH HW LANES V TILES_PER_CHUNK ACC
//       The two-pass statistics of one plane as the chunked forward computes them: the plane's
//       values (PATH: HW float64, rounded to ACC = f32 | f64 first) less the first value
//       (the kernels' shift), cut into chunks of TILES_PER_CHUNK tiles of LANES threads x
//       values_per_thread slots (V per access); each thread merges its tiles (moments_of,
//       chan_merge), each chunk its threads (mean_term, spread_term), the finalize the chunks
//       (merge_chunk_moments) and adds the shift back. Prints mean, m2 (hex floats, exact),
//       chunks, and whether the slots covered every value exactly once.
//   pairs PATH K
//       The backward finalize's fixed-order sums (sum_chunk_pairs) of K float chunk pairs.
//   plan N C HW CHANNELS_LAST BACKWARD SCALAR_SIZE SM_COUNT
//       plan_plane_stats (acc = double for 8-byte scalars, else float) and a walk over one
//       plane's chunks, tiles, lanes and slots: covered (each value exactly once), aligned
//       (NCHW vectors start at multiples of V), in_bounds, max_slots (per thread per tile).
//   columns ROWS C SCALAR_SIZE BACKWARD KERNEL SM_COUNT PER_SAMPLE HW
//       plan_columns for bias_act (KERNEL = bias_act) or noise_injection (noise), V = 16 bytes
//       of channels, its loads in flight per SM, and a walk over every thread's rows: covered
//       (each row of each column tile exactly once), increasing (a thread's rows in order),
//       noise_ok (noise_index / next_noise_index equal r or r % HW; PER_SAMPLE 1 or 0).
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "columns_plan.h"
#include "plane_stats.h"

using namespace stylegan_fast;
using namespace stylegan_fast::plans;

namespace {

template <typename T>
void merge_query(const std::vector<double>& data, int64_t HW, int lanes, int V,
                 int64_t tiles_per_chunk) {
  constexpr int kValues = values_per_thread(sizeof(T));
  const int64_t tile = int64_t(lanes) * kValues;
  const int64_t chunk = tiles_per_chunk * tile;
  const int64_t chunks = ceil_div(HW, chunk);
  // Three planes' partials, chunk-major as on the GPU; this plane is plane 1, the others NaN
  // (a merge reading outside its plane would show).
  constexpr int64_t kPlanes = 3, kPlane = 1;
  std::vector<T> partials(size_t(chunks * kPlanes) * 2, std::numeric_limits<T>::quiet_NaN());
  const T shift = static_cast<T>(data[0]);  // forward_partials_kernel's: the first value
  std::vector<int> hits(static_cast<size_t>(HW), 0);
  bool in_bounds = true;
  for (int64_t k = 0; k < chunks; ++k) {
    const Span c = chunk_span(HW, chunk, k);
    std::vector<Moments<T>> own(size_t(lanes), Moments<T>{T(0), T(0), T(0)});
    for (int lane = 0; lane < lanes; ++lane) {
      for (int64_t t = 0; t < tiles_in(c, tile); ++t) {
        const Span s = tile_span(c, tile, t);
        const int count = slot_count(s, lane, lanes, V, kValues);
        if (count == 0) continue;
        T u[kValues];
        for (int e = 0; e < kValues; ++e) {
          u[e] = T(0);
          if (e < count) {
            const int64_t i = slot_index(s.begin, lane, lanes, V, e);
            if (i < s.begin || i >= s.end) {
              in_bounds = false;
              continue;
            }
            ++hits[size_t(i)];
            u[e] = static_cast<T>(data[size_t(i)]) - shift;
          }
        }
        own[size_t(lane)] = chan_merge(own[size_t(lane)], moments_of<kValues>(u, count));
      }
    }
    // The group sums (a tree on the GPU, lane order here: the same terms).
    T s = T(0);
    for (const auto& m : own) s += mean_term(m);
    const T mean = s / T(c.end - c.begin);
    T d = T(0);
    for (const auto& m : own) d += spread_term(m, mean);
    T* part = partials.data() + partial_offset(k, kPlane, kPlanes);
    part[0] = mean;
    part[1] = d;
  }
  T mean, m2;
  merge_chunk_moments(partials.data(), kPlane, kPlanes, HW, chunk, chunks, mean, m2);
  mean = shift + mean;  // forward_finalize_kernel
  bool covered = true;
  for (int h : hits) covered = covered && h == 1;
  std::printf("mean=%a m2=%a chunks=%" PRId64 " covered=%d in_bounds=%d\n", double(mean),
              double(m2), chunks, int(covered), int(in_bounds));
}

void merge(std::istringstream& in) {
  std::string path, acc;
  int64_t HW, tiles_per_chunk;
  int lanes, V;
  in >> path >> HW >> lanes >> V >> tiles_per_chunk >> acc;
  std::vector<double> data(static_cast<size_t>(HW));
  std::ifstream file(path, std::ios::binary);
  file.read(reinterpret_cast<char*>(data.data()), std::streamsize(HW * sizeof(double)));
  if (acc == "f32") {
    merge_query<float>(data, HW, lanes, V, tiles_per_chunk);
  } else {
    merge_query<double>(data, HW, lanes, V, tiles_per_chunk);
  }
}

// pairs PATH K: the backward finalize's sums (sum_chunk_pairs) of K chunk pairs read from PATH
// (2K float64: first, second of chunk 0, ...), as plane 1 of 3.
void pairs(std::istringstream& in) {
  std::string path;
  int64_t K;
  in >> path >> K;
  std::vector<double> data(static_cast<size_t>(2 * K));
  std::ifstream file(path, std::ios::binary);
  file.read(reinterpret_cast<char*>(data.data()), std::streamsize(2 * K * sizeof(double)));
  constexpr int64_t kPlanes = 3, kPlane = 1;
  std::vector<float> partials(size_t(K * kPlanes) * 2, std::numeric_limits<float>::quiet_NaN());
  for (int64_t k = 0; k < K; ++k) {
    float* part = partials.data() + partial_offset(k, kPlane, kPlanes);
    part[0] = static_cast<float>(data[size_t(2 * k)]);
    part[1] = static_cast<float>(data[size_t(2 * k + 1)]);
  }
  float first, second;
  sum_chunk_pairs(partials.data(), kPlane, kPlanes, K, first, second);
  std::printf("first=%a second=%a\n", double(first), double(second));
}

void plan(std::istringstream& in) {
  int64_t N, C, HW, scalar_size;
  int channels_last, backward, sm_count;
  in >> N >> C >> HW >> channels_last >> backward >> scalar_size >> sm_count;
  const int64_t acc_size = scalar_size == 8 ? 8 : 4;
  const PlaneStatsPlan m =
      plan_plane_stats(N, C, HW, channels_last, backward, scalar_size, acc_size, sm_count);
  const int values = values_per_thread(acc_size);
  // The kernels' vector width: 16-byte vectors NCHW when they divide the plane (with_layout).
  const int V = !channels_last && HW % (16 / scalar_size) == 0 ? int(16 / scalar_size) : 1;
  std::vector<int> hits(static_cast<size_t>(HW), 0);
  bool in_bounds = true, aligned = true;
  int max_slots = 0;
  for (int64_t k = 0; k < m.chunks; ++k) {
    const Span c = chunk_span(HW, m.chunk, k);
    for (int64_t t = 0; t < tiles_in(c, m.tile); ++t) {
      const Span s = tile_span(c, m.tile, t);
      for (int lane = 0; lane < m.lanes; ++lane) {
        const int count = slot_count(s, lane, m.lanes, V, values);
        max_slots = count > max_slots ? count : max_slots;
        for (int e = 0; e < count; ++e) {
          const int64_t i = slot_index(s.begin, lane, m.lanes, V, e);
          if (i < s.begin || i >= s.end) {
            in_bounds = false;
            continue;
          }
          ++hits[size_t(i)];
          if (e % V == 0 && i % V != 0) aligned = false;
          // The kernels address slot e as slot 0 + (e / V) accesses of lanes * V (Accesses).
          const int64_t i0 = slot_index(s.begin, lane, m.lanes, V, 0);
          if (i != i0 + int64_t(e / V) * m.lanes * V + e % V) aligned = false;
        }
      }
    }
  }
  bool covered = true;
  for (int h : hits) covered = covered && h == 1;
  std::printf(
      "chunked=%d threads=%d lanes=%d group=%d tile=%" PRId64 " tiles_per_chunk=%" PRId64
      " chunk=%" PRId64 " chunks=%" PRId64 " blocks=%" PRId64 " smem=%" PRId64
      " finalize_blocks=%" PRId64 " values=%d V=%d max_threads=%d covered=%d in_bounds=%d"
      " aligned=%d max_slots=%d\n",
      int(m.chunked), m.threads, m.lanes, m.group, m.tile, m.tiles_per_chunk, m.chunk, m.chunks,
      m.blocks, m.smem, m.finalize_blocks, values, V,
      max_one_pass_threads(backward, channels_last, scalar_size), int(covered), int(in_bounds),
      int(aligned), max_slots);
}

void columns(std::istringstream& in) {
  int64_t rows, C, scalar_size, HW;
  int backward, sm_count, per_sample;
  std::string kernel;
  in >> rows >> C >> scalar_size >> backward >> kernel >> sm_count >> per_sample >> HW;
  const int V = int(16 / scalar_size);
  const bool noise = kernel == "noise";
  const int R = noise ? noise_rows_per_thread(V, scalar_size)
                      : bias_act_rows_per_thread(V, scalar_size, backward);
  const int tensors = !noise && backward ? 2 : 1;
  const ColumnsPlan m = plan_columns(rows, C, V, R, sm_count);
  const double in_flight = loads_in_flight_per_sm(m, C, scalar_size * tensors, sm_count);
  // Every row lane's steps and rows, in every chunk (the column tiles all walk the same rows).
  std::vector<uint8_t> hits(static_cast<size_t>(rows), 0);
  bool increasing = true, noise_ok = true;
  const NoiseRows nr = noise_rows(per_sample, HW, m.row_lanes);
  for (int64_t k = 0; k < m.chunks; ++k) {
    const int64_t begin = k * m.chunk_rows, end = min_of(rows, begin + m.chunk_rows);
    for (int row_lane = 0; row_lane < m.row_lanes; ++row_lane) {
      int64_t last = -1;
      for (int64_t first = begin + row_lane; first < end; first += int64_t(m.row_lanes) * R) {
        const int count = rows_in_step(first, end, m.row_lanes, R);
        int64_t i = noise_index(nr, first);
        for (int u = 0; u < R; ++u) {
          const int64_t r = first + int64_t(u) * m.row_lanes;
          if (u < count) {
            if (r >= end || r <= last) increasing = false;
            if (r < rows) ++hits[size_t(r)];
            last = r;
            if (i != (per_sample ? r : r % HW)) noise_ok = false;
          } else if (r < end) {
            increasing = false;  // a row of the chunk left out
          }
          i = next_noise_index(nr, i);
        }
      }
    }
  }
  bool covered = true;
  for (uint8_t h : hits) covered = covered && h == 1;
  std::printf("V=%d rows_per_thread=%d col_lanes=%d row_lanes=%d col_tiles=%" PRId64
              " chunk_rows=%" PRId64 " chunks=%" PRId64 " in_flight=%.1f covered=%d"
              " increasing=%d noise_ok=%d\n",
              V, R, m.col_lanes, m.row_lanes, m.col_tiles, m.chunk_rows, m.chunks, in_flight,
              int(covered), int(increasing), int(noise_ok));
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "merge") {
      merge(in);
    } else if (command == "pairs") {
      pairs(in);
    } else if (command == "plan") {
      plan(in);
    } else if (command == "columns") {
      columns(in);
    } else {
      std::printf("error=unknown_command\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
