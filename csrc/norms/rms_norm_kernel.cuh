// Device code of the RMSNorm family: forward, backward and the backward's per-segment finalize, in the
// portable dialect (simt/dialect.cuh), so nvcc compiles it for the GPU and g++ for the SIMT
// emulator. No torch headers. Geometry and tuning constants: rms_norm_plan.h. The math is the CPU
// kernel's (rms_norm_cpu_kernel.cpp), with fp32 accumulation:
//   y = x * rstd * mult[s] + (shift[s] | residual | 0),   rstd = 1 / sqrt(mean(x^2) + eps)
//   grad_x = rstd * g*mult - (rstd^3 * sum(g*mult*x) / D) * x,
//   grad_mult[s] = sum_{r in s} g * x * rstd,   grad_shift[s] = sum_{r in s} g.
// Runtime flags (mult / shift / residual present, reductions requested, packed or padded) are
// block-uniform branches rather than template parameters: the kernels are memory-bound, and each flag
// made static would double the kernels to compile (13 now: {fwd, bwd} x 3 dtypes x {16-byte, scalar}
// + finalize).
#pragma once

#include <cstdint>

#include "common/segments.h"
#include "norms/norm_params.h"
#include "norms/rms_norm_plan.h"
#include "common/vec.cuh"
#include "simt/dialect.cuh"

namespace lavin_fast::rms_norm_kernels {

// ---- vectors of elements (Vec, load_vec, store_vec: common/vec.cuh) ----

// V consecutive fp32 values (a per-segment row, an accumulator row), 16 bytes at a time when V is a
// multiple of 4 (the launcher then guarantees 16-byte aligned rows).
template <int V>
LF_DEVICE void load_f32(const float* ptr, float (&out)[V]) {
  if constexpr (V % 4 == 0) {
    LF_UNROLL
    for (int i = 0; i < V; i += 4) {
      const Vec<float, 4> q = lf::bit_cast<Vec<float, 4>>(lf::load16(ptr + i));
      LF_UNROLL
      for (int j = 0; j < 4; ++j) out[i + j] = q.e[j];
    }
  } else {
    LF_UNROLL
    for (int i = 0; i < V; ++i) out[i] = ptr[i];
  }
}

template <int V>
LF_DEVICE void store_f32(float* ptr, const float (&in)[V]) {
  if constexpr (V % 4 == 0) {
    LF_UNROLL
    for (int i = 0; i < V; i += 4) {
      Vec<float, 4> q;
      LF_UNROLL
      for (int j = 0; j < 4; ++j) q.e[j] = in[i + j];
      lf::store16(ptr + i, lf::bit_cast<uint4>(q));
    }
  } else {
    LF_UNROLL
    for (int i = 0; i < V; ++i) ptr[i] = in[i];
  }
}

// mult[s] at columns [col, col + V), or ones when the op has no multiplier (rms_norm without weight).
template <int V>
LF_DEVICE void load_mult(const float* mult_row, int col, float (&out)[V]) {
  if (mult_row) {
    load_f32<V>(mult_row + col, out);
  } else {
    LF_UNROLL
    for (int i = 0; i < V; ++i) out[i] = 1.f;
  }
}

// ---- segments ----

// Rows [b0, b1) of segment s, clamped into 0 <= b0 <= b1 <= rows. The CUDA path does not validate
// cu_seqlens values (reading them on the host would synchronise): clamping makes wrong values give
// wrong numbers (and grad_x rows no segment covers stay unwritten), never accesses outside the tensors.
LF_DEVICE void segment_rows(const SegmentLayout& seg, int64_t rows, int64_t s, int64_t& b0, int64_t& b1) {
  if (seg.cu_seqlens) {
    b0 = seg.cu_seqlens[s];
    b1 = seg.cu_seqlens[s + 1];
  } else {
    b0 = s * seg.rows_per_segment;
    b1 = b0 + seg.rows_per_segment;
  }
  b0 = b0 < 0 ? 0 : (b0 > rows ? rows : b0);
  b1 = b1 < b0 ? b0 : (b1 > rows ? rows : b1);
}

// The last segment s in [0, S) whose first row is <= row (kStrict: < row), 0 if none. For a row of the
// tensor and valid cu_seqlens, the non-kStrict answer is the (non-empty) segment holding the row: empty
// segments at the same position come before it. Binary search: log2(S) loads, L1/L2 hits after the
// first rows. The padded layout divides (rows_per_segment > 0 whenever there are rows).
template <bool kStrict>
LF_DEVICE int64_t last_segment_from(const SegmentLayout& seg, int64_t row) {
  const int64_t last = seg.num_segments - 1;
  int64_t s;
  if (seg.cu_seqlens) {
    int64_t lo = 0, hi = last;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      const int64_t b = seg.cu_seqlens[mid];
      if (kStrict ? b < row : b <= row) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    s = lo;
  } else {
    s = kStrict ? (row - 1) / seg.rows_per_segment : row / seg.rows_per_segment;
  }
  return s < 0 ? 0 : (s > last ? last : s);
}

// ---- reductions ----

// Sum of v over each row group of `group` threads; every thread of the group gets it. All threads of
// the block call it with the same group (groups of more than a warp synchronise the block). The order
// is fixed (an xor tree in the warp, then the group's warps in order), so sums never depend on timing.
// Wider groups go through `scratch` (2 * warps floats), double-buffered by `parity`: a warp can only
// rewrite a buffer after every warp passed the barrier of the row in between, i.e. finished reading it.
LF_DEVICE float group_sum(float v, int group, float* scratch, int& parity) {
  const int width = group < lf::kWarpSize ? group : lf::kWarpSize;
  for (int off = width / 2; off > 0; off /= 2) v += lf::shfl_xor(lf::kFullMask, v, off);
  if (group <= lf::kWarpSize) return v;
  const int warps = static_cast<int>(blockDim.x) / lf::kWarpSize;
  float* buf = scratch + parity * warps;
  parity ^= 1;
  const int warp = lf::warp_id();
  if (lf::lane_id() == 0) buf[warp] = v;
  lf::syncthreads();
  const int per_group = group / lf::kWarpSize;
  const float* mine = buf + (warp / per_group) * per_group;
  float sum = 0.f;
  for (int i = 0; i < per_group; ++i) sum += mine[i];
  return sum;
}

// ---- forward ----

// Where one row's output comes from and goes: looked up after the row's reduction, so that the segment
// search and these pointers are not live (in registers) while the row's loads are in flight.
template <typename T>
struct FwdOut {
  const float* mult;  // mult[s], or null for ones
  const float* shift;  // shift[s], or null
  const T* residual;   // residual row, or null
  T* y;
};

template <typename T>
LF_DEVICE FwdOut<T> fwd_out(const RmsNormFwdParams& p, int64_t row) {
  const int64_t s = last_segment_from<false>(p.seg, row);
  FwdOut<T> o;
  o.mult = p.mult ? p.mult + s * p.mult_seg_stride : nullptr;
  o.shift = p.shift ? p.shift + s * p.dim : nullptr;
  o.residual = p.residual ? static_cast<const T*>(p.residual) + row * p.residual_row_stride : nullptr;
  o.y = static_cast<T*>(p.y) + row * p.dim;
  return o;
}

// y[col, col + V) from the row's x vector.
template <typename T, int V>
LF_DEVICE void fwd_write(const FwdOut<T>& o, int col, const Vec<T, V>& xv, float rstd) {
  float m[V];
  load_mult<V>(o.mult, col, m);
  float a[V];
  if (o.shift) {
    load_f32<V>(o.shift + col, a);
  } else if (o.residual) {
    const Vec<T, V> rv = load_vec<T, V>(o.residual + col);
    LF_UNROLL
    for (int e = 0; e < V; ++e) a[e] = lf::to_float(rv.e[e]);
  }
  Vec<T, V> out;
  LF_UNROLL
  for (int e = 0; e < V; ++e) {
    float v = lf::to_float(xv.e[e]) * rstd * m[e];
    if (o.shift || o.residual) v += a[e];
    out.e[e] = lf::from_float<T>(v);
  }
  store_vec<T, V>(o.y + col, out);
}

// Grid-stride over steps of R rows (any number of rows fits the grid); group r of the block takes row
// step + r. Every thread runs every step, inactive ones (past the last row) included, because the
// group reduction is a collective.
template <typename T, int V>
LF_GLOBAL void LF_LAUNCH_BOUNDS(kFwdMaxGroup) rms_norm_fwd_kernel(const RmsNormFwdParams p, const RowPlan plan) {
  constexpr int kVecs = fwd_cache_vecs<V>();
  const int group = plan.group;
  const int r = static_cast<int>(threadIdx.x) / group, t = static_cast<int>(threadIdx.x) % group;
  const int nvec = static_cast<int>(p.dim / V);
  const float inv_dim = 1.f / static_cast<float>(p.dim);
  float* scratch = lf::dynamic_smem<float>();
  int parity = 0;

  const int64_t step = static_cast<int64_t>(gridDim.x) * plan.rows_per_block;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * plan.rows_per_block; first < p.rows; first += step) {
    const int64_t row = first + r;
    const bool active = row < p.rows;
    const T* x_row = static_cast<const T*>(p.x) + (active ? row : 0) * p.x_row_stride;

    float ss = 0.f;
    if (plan.cached) {
      // x stays in registers from the sum of squares to the write: read once.
      Vec<T, V> xv[kVecs];
      LF_UNROLL
      for (int k = 0; k < kVecs; ++k) {
        const int v = t + k * group;
        if (active && v < nvec) {
          xv[k] = load_vec<T, V>(x_row + v * V);
          LF_UNROLL
          for (int e = 0; e < V; ++e) {
            const float f = lf::to_float(xv[k].e[e]);
            ss += f * f;
          }
        }
      }
      ss = group_sum(ss, group, scratch, parity);
      const float rstd = rsqrtf(ss * inv_dim + p.eps);
      if (active) {
        if (t == 0) p.rstd[row] = rstd;
        const FwdOut<T> o = fwd_out<T>(p, row);
        LF_UNROLL
        for (int k = 0; k < kVecs; ++k) {
          const int v = t + k * group;
          if (v < nvec) fwd_write<T, V>(o, v * V, xv[k], rstd);
        }
      }
    } else {
      // Rows wider than the whole group's cache: read x twice, the second time mostly from L2.
      if (active) {
        for (int v = t; v < nvec; v += group) {
          const Vec<T, V> xv = load_vec<T, V>(x_row + v * V);
          LF_UNROLL
          for (int e = 0; e < V; ++e) {
            const float f = lf::to_float(xv.e[e]);
            ss += f * f;
          }
        }
      }
      ss = group_sum(ss, group, scratch, parity);
      const float rstd = rsqrtf(ss * inv_dim + p.eps);
      if (active) {
        if (t == 0) p.rstd[row] = rstd;
        const FwdOut<T> o = fwd_out<T>(p, row);
        for (int v = t; v < nvec; v += group) fwd_write<T, V>(o, v * V, load_vec<T, V>(x_row + v * V), rstd);
      }
    }
  }
}

// ---- backward ----
//
// Block b owns chunk b, rows [b*C, min((b+1)*C, rows)), and walks the segments meeting it. Each
// (chunk, segment) item sums g*n and g over its rows (registers, or the destination row itself when the
// row is not cached) and writes them once:
//  - segments lying inside one chunk: straight into grad_mult[s] / grad_shift[s];
//  - segments cut by chunk boundaries ("split"): into workspace slot 2*chunk + (segment starts after the
//    chunk's first row ? 1 : 0). A chunk meets at most one split segment that began at or before its
//    first row and one that begins after it, so slots never collide; the finalize kernel sums a split
//    segment's slots in chunk order;
//  - empty segments: zeros, written by the chunk holding their position (the last chunk for those at
//    the end).
// Every choice depends on shapes and cu_seqlens only, so the sums are bitwise reproducible.

struct BwdItem {
  int64_t lo, hi;        // rows of the item
  const float* mult;     // mult row of the segment, or null
  float* sum_mult;       // where the item's grad_mult sums go, or null
  float* sum_shift;      // same for grad_shift
};

template <typename T, int V>
LF_DEVICE void bwd_item_cached(const RmsNormBwdParams& p, const RowPlan& plan, const BwdItem& it, int r,
                               int t, float* scratch, float* red, int& parity) {
  constexpr int kVecs = bwd_cache_vecs<V>();
  const int group = plan.group, nvec = static_cast<int>(p.dim / V);
  const float dim_f = static_cast<float>(p.dim);
  float acc_m[kVecs][V], acc_s[kVecs][V];
  LF_UNROLL
  for (int k = 0; k < kVecs; ++k) {
    LF_UNROLL
    for (int e = 0; e < V; ++e) acc_m[k][e] = acc_s[k][e] = 0.f;
  }

  for (int64_t first = it.lo; first < it.hi; first += plan.rows_per_block) {
    const int64_t row = first + r;
    const bool active = row < it.hi;
    const int64_t rr = active ? row : 0;
    const T* x_row = static_cast<const T*>(p.x) + rr * p.x_row_stride;
    const T* g_row = static_cast<const T*>(p.grad_y) + rr * p.grad_y_row_stride;
    const float rstd = active ? p.saved_rstd[rr] : 0.f;

    // x and grad_y stay in registers from the dot product to the write.
    Vec<T, V> xv[kVecs], gv[kVecs];
    float dot = 0.f;
    LF_UNROLL
    for (int k = 0; k < kVecs; ++k) {
      const int v = t + k * group;
      if (active && v < nvec) {
        xv[k] = load_vec<T, V>(x_row + v * V);
        gv[k] = load_vec<T, V>(g_row + v * V);
        float m[V];
        load_mult<V>(it.mult, v * V, m);
        LF_UNROLL
        for (int e = 0; e < V; ++e) dot += lf::to_float(gv[k].e[e]) * m[e] * lf::to_float(xv[k].e[e]);
      }
    }
    dot = group_sum(dot, group, scratch, parity);
    if (active) {
      const float c = rstd * rstd * rstd * dot / dim_f;
      T* dx_row = static_cast<T*>(p.grad_x) + row * p.dim;
      LF_UNROLL
      for (int k = 0; k < kVecs; ++k) {
        const int v = t + k * group;
        if (v < nvec) {
          float m[V];
          load_mult<V>(it.mult, v * V, m);  // an L1 hit: cheaper than keeping V more registers
          Vec<T, V> out;
          LF_UNROLL
          for (int e = 0; e < V; ++e) {
            const float g = lf::to_float(gv[k].e[e]), x = lf::to_float(xv[k].e[e]);
            out.e[e] = lf::from_float<T>(g * m[e] * rstd - x * c);
            acc_m[k][e] += g * x * rstd;
            acc_s[k][e] += g;
          }
          store_vec<T, V>(dx_row + v * V, out);
        }
      }
    }
  }

  if (!it.sum_mult && !it.sum_shift) return;
  if (plan.rows_per_block == 1) {
    // Each column belongs to one thread: write straight from registers.
    LF_UNROLL
    for (int k = 0; k < kVecs; ++k) {
      const int v = t + k * group;
      if (v < nvec) {
        if (it.sum_mult) store_f32<V>(it.sum_mult + v * V, acc_m[k]);
        if (it.sum_shift) store_f32<V>(it.sum_shift + v * V, acc_s[k]);
      }
    }
    return;
  }
  // Several groups share the block: red[r][which][D] (which: mult, then shift), summed over r in order.
  const int64_t d = p.dim;
  const int nred = plan.num_red;
  const int shift_at = it.sum_mult ? 1 : 0;
  LF_UNROLL
  for (int k = 0; k < kVecs; ++k) {
    const int v = t + k * group;
    if (v < nvec) {
      LF_UNROLL
      for (int e = 0; e < V; ++e) {
        const int col = v * V + e;
        if (it.sum_mult) red[(r * nred) * d + col] = acc_m[k][e];
        if (it.sum_shift) red[(r * nred + shift_at) * d + col] = acc_s[k][e];
      }
    }
  }
  lf::syncthreads();
  const int64_t width = nred * d;
  for (int64_t col = threadIdx.x; col < width; col += blockDim.x) {
    float sum = 0.f;
    for (int i = 0; i < plan.rows_per_block; ++i) sum += red[i * width + col];
    if (it.sum_mult && col < d) {
      it.sum_mult[col] = sum;
    } else {
      it.sum_shift[col - shift_at * d] = sum;
    }
  }
  lf::syncthreads();  // red is rewritten by the next item
}

// Rows wider than the whole group's cache (R = 1): two passes over x and grad_y, and the sums
// accumulate in the destination row itself, each column read-modified-written by the one thread that
// owns it (so no barrier), mostly in L2.
template <typename T, int V>
LF_DEVICE void bwd_item_streamed(const RmsNormBwdParams& p, const RowPlan& plan, const BwdItem& it, int t,
                                 float* scratch, int& parity) {
  const int group = plan.group, nvec = static_cast<int>(p.dim / V);
  const float dim_f = static_cast<float>(p.dim);
  const float zeros[V] = {};
  for (int v = t; v < nvec; v += group) {
    if (it.sum_mult) store_f32<V>(it.sum_mult + v * V, zeros);
    if (it.sum_shift) store_f32<V>(it.sum_shift + v * V, zeros);
  }
  for (int64_t row = it.lo; row < it.hi; ++row) {
    const T* x_row = static_cast<const T*>(p.x) + row * p.x_row_stride;
    const T* g_row = static_cast<const T*>(p.grad_y) + row * p.grad_y_row_stride;
    const float rstd = p.saved_rstd[row];
    float dot = 0.f;
    for (int v = t; v < nvec; v += group) {
      const Vec<T, V> xv = load_vec<T, V>(x_row + v * V), gv = load_vec<T, V>(g_row + v * V);
      float m[V];
      load_mult<V>(it.mult, v * V, m);
      LF_UNROLL
      for (int e = 0; e < V; ++e) dot += lf::to_float(gv.e[e]) * m[e] * lf::to_float(xv.e[e]);
    }
    dot = group_sum(dot, group, scratch, parity);
    const float c = rstd * rstd * rstd * dot / dim_f;
    T* dx_row = static_cast<T*>(p.grad_x) + row * p.dim;
    for (int v = t; v < nvec; v += group) {
      const Vec<T, V> xv = load_vec<T, V>(x_row + v * V), gv = load_vec<T, V>(g_row + v * V);
      float m[V], am[V] = {}, as[V] = {};
      load_mult<V>(it.mult, v * V, m);
      if (it.sum_mult) load_f32<V>(it.sum_mult + v * V, am);
      if (it.sum_shift) load_f32<V>(it.sum_shift + v * V, as);
      Vec<T, V> out;
      LF_UNROLL
      for (int e = 0; e < V; ++e) {
        const float g = lf::to_float(gv.e[e]), x = lf::to_float(xv.e[e]);
        out.e[e] = lf::from_float<T>(g * m[e] * rstd - x * c);
        am[e] += g * x * rstd;
        as[e] += g;
      }
      store_vec<T, V>(dx_row + v * V, out);
      if (it.sum_mult) store_f32<V>(it.sum_mult + v * V, am);
      if (it.sum_shift) store_f32<V>(it.sum_shift + v * V, as);
    }
  }
}

// grid: one block per chunk (plan.grid); ws: the split segments' partial rows (plan.num_red * D floats
// per slot, 2 slots per chunk), or null when no segment can be split.
template <typename T, int V>
LF_GLOBAL void LF_LAUNCH_BOUNDS(kBwdMaxGroup)
    rms_norm_bwd_kernel(const RmsNormBwdParams p, const RowPlan plan, float* ws) {
  const int group = plan.group;
  const int r = static_cast<int>(threadIdx.x) / group, t = static_cast<int>(threadIdx.x) % group;
  float* scratch = lf::dynamic_smem<float>();
  float* red = scratch + 2 * (blockDim.x / lf::kWarpSize);  // after group_sum's scratch
  int parity = 0;

  const int64_t d = p.dim, chunk_rows = plan.chunk_rows;
  const int64_t chunk = blockIdx.x;
  const int64_t c_begin = chunk * chunk_rows;
  const int64_t c_end = c_begin + chunk_rows < p.rows ? c_begin + chunk_rows : p.rows;
  const bool last_chunk = c_end == p.rows;
  const int64_t width = plan.num_red * d;

  // From the last segment starting before the chunk (it may reach into it) to the last one starting
  // inside it; the last chunk goes on to the end, for empty segments sitting at row `rows`.
  for (int64_t s = last_segment_from<true>(p.seg, c_begin); s < p.seg.num_segments; ++s) {
    int64_t b0, b1;
    segment_rows(p.seg, p.rows, s, b0, b1);
    if (b0 >= c_end && !last_chunk) break;
    if (b0 == b1) {
      if (plan.num_red > 0 && b0 >= c_begin) {
        for (int64_t col = threadIdx.x; col < d; col += blockDim.x) {
          if (p.grad_mult) p.grad_mult[s * d + col] = 0.f;
          if (p.grad_shift) p.grad_shift[s * d + col] = 0.f;
        }
      }
      continue;
    }
    BwdItem it;
    it.lo = b0 > c_begin ? b0 : c_begin;
    it.hi = b1 < c_end ? b1 : c_end;
    if (it.lo >= it.hi) continue;  // ends before the chunk
    it.mult = p.mult ? p.mult + s * p.mult_seg_stride : nullptr;
    it.sum_mult = it.sum_shift = nullptr;
    if (plan.num_red > 0) {
      const bool split = b0 / chunk_rows != (b1 - 1) / chunk_rows;
      float* slot = split ? ws + (2 * chunk + (b0 > c_begin ? 1 : 0)) * width : nullptr;
      if (p.grad_mult) it.sum_mult = split ? slot : p.grad_mult + s * d;
      if (p.grad_shift) it.sum_shift = split ? slot + (p.grad_mult ? d : 0) : p.grad_shift + s * d;
    }
    if (plan.cached) {
      bwd_item_cached<T, V>(p, plan, it, r, t, scratch, red, parity);
    } else {
      bwd_item_streamed<T, V>(p, plan, it, t, scratch, parity);
    }
  }
}

// Sums the split segments' partial rows in chunk order. grid: x over groups of kFinBoundaries chunk
// boundaries (a split segment is summed by the group holding its first boundary), y over 32-column
// tiles; kFinThreads threads, warp w summing chunks c0 + w, c0 + w + 16, ... of the tile, then warp 0
// the 16 warps' sums in order. Dynamic shared memory: kFinWarps * kFinCols floats + one word.
template <int kUnused = 0>  // a template so that the header can be included by several sources
LF_GLOBAL void LF_LAUNCH_BOUNDS(kFinThreads)
    rms_norm_bwd_finalize_kernel(const RmsNormBwdParams p, const RowPlan plan, const float* ws) {
  const int64_t d = p.dim, width = plan.num_red * d, chunk_rows = plan.chunk_rows;
  const int64_t boundaries = plan.grid - 1;  // boundary b lies between chunks b and b + 1
  float* red = lf::dynamic_smem<float>();
  unsigned* found = reinterpret_cast<unsigned*>(red + kFinWarps * kFinCols);
  const int lane = lf::lane_id(), warp = lf::warp_id();

  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kFinBoundaries; first < boundaries;
       first += static_cast<int64_t>(gridDim.x) * kFinBoundaries) {
    if (warp == 0) {
      // Lane i: does a segment get cut for the first time at boundary first + i?
      const int64_t b = first + lane;
      bool starts = false;
      if (b < boundaries) {
        const int64_t q = (b + 1) * chunk_rows;  // first row of chunk b + 1, < rows
        int64_t b0, b1;
        segment_rows(p.seg, p.rows, last_segment_from<false>(p.seg, q), b0, b1);
        starts = b0 >= b * chunk_rows && b0 < q && q < b1;
      }
      const unsigned mask = lf::ballot(lf::kFullMask, starts);
      if (lane == 0) *found = mask;
    }
    lf::syncthreads();
    const unsigned mask = *found;
    lf::syncthreads();  // *found is rewritten by the next group

    for (int i = 0; i < kFinBoundaries; ++i) {
      if (!((mask >> i) & 1u)) continue;
      const int64_t b = first + i;
      const int64_t s = last_segment_from<false>(p.seg, (b + 1) * chunk_rows);
      int64_t b0, b1;
      segment_rows(p.seg, p.rows, s, b0, b1);
      const int64_t c_last = (b1 - 1) / chunk_rows;
      for (int64_t col0 = static_cast<int64_t>(blockIdx.y) * kFinCols; col0 < width;
           col0 += static_cast<int64_t>(gridDim.y) * kFinCols) {
        const int64_t col = col0 + lane;
        // Slot of chunk c: 2c, or 2c + 1 for the segment's first chunk if it starts inside it.
        const auto part = [&](int64_t c) { return ws[(2 * c + (b0 > c * chunk_rows ? 1 : 0)) * width + col]; };
        float sum = 0.f;
        if (col < width) {
          // Four loads in flight, then added in chunk order.
          int64_t c = b + warp;
          for (; c + 3 * kFinWarps <= c_last; c += 4 * kFinWarps) {
            const float v0 = part(c), v1 = part(c + kFinWarps), v2 = part(c + 2 * kFinWarps),
                        v3 = part(c + 3 * kFinWarps);
            sum += v0;
            sum += v1;
            sum += v2;
            sum += v3;
          }
          for (; c <= c_last; c += kFinWarps) sum += part(c);
        }
        red[warp * kFinCols + lane] = sum;
        lf::syncthreads();
        if (warp == 0 && col < width) {
          float total = 0.f;
          for (int w = 0; w < kFinWarps; ++w) total += red[w * kFinCols + lane];
          if (p.grad_mult && col < d) {
            p.grad_mult[s * d + col] = total;
          } else {
            p.grad_shift[s * d + col - (p.grad_mult ? d : 0)] = total;
          }
        }
        lf::syncthreads();
      }
    }
  }
}

}  // namespace lavin_fast::rms_norm_kernels
