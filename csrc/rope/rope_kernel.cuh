// Device code of qk_norm_rope: forward, backward and the backward's grad_weight finalize, in the
// portable dialect (simt/dialect.cuh), so nvcc compiles it for the GPU and g++ for the SIMT emulator.
// No torch headers. Geometry: rope_plan.h. The math is the CPU kernel's (rope_cpu_kernel.cpp):
//   y = R(x * rstd * weight),  grad_x = rstd * gn*weight - (rstd^3 * sum(gn*weight*x) / W) * x,
//   gn = R^T grad_y,  grad_weight = sum_rows gn * x * rstd.
// A row is read once into shared memory (fp32), where the rotation finds each column's partner; cos/sin
// of the row's pairs are computed once per row (not per head): the angle reduced in double, then
// sincospif. Runtime options (weight, normalize, interleaved, grad_weight) are block-uniform branches:
// 13 kernels in all ({fwd, bwd} x 3 dtypes x {16-byte, scalar} + finalize).
#pragma once

#include <cstdint>

#include "rope/rope_angle.h"
#include "rope/rope_params.h"
#include "rope/rope_plan.h"
#include "common/vec.cuh"
#include "simt/dialect.cuh"

#ifdef LF_SIMT_EMULATOR
#include <cmath>
#endif

namespace lavin_fast::rope_kernels {

// sin(pi t), cos(pi t). The emulator has no sincospif: double math, rounded once.
LF_DEVICE void sincos_pi(float t, float* s, float* c) {
#ifdef LF_SIMT_EMULATOR
  const double a = 3.14159265358979323846 * static_cast<double>(t);
  *s = static_cast<float>(std::sin(a));
  *c = static_cast<float>(std::cos(a));
#else
  sincospif(t, s, c);
#endif
}

// cos/sin of the row's pairs into cs[2k], cs[2k + 1], by the group's threads. The angle is computed and
// reduced to r in [-pi, pi] in double (rope_angle.h: a few DMUL/DFMA per pair and row, no double
// transcendental), so every int32 position gives a true rotation; t = float(r / pi) goes to sincospi
// and e = r - pi t (|e| <= 1e-7) is added back to first order.
LF_DEVICE void row_cos_sin(const RopeTables& tab, const int32_t* pos, int t, int group, float* cs) {
  for (int k = t; k < tab.num_pairs; k += group) {
    const int axis = k < tab.pair_begin[1] ? 0 : (k < tab.pair_begin[2] ? 1 : 2);
    const double r = rope_angle::reduced_angle(pos[axis], tab.inv_freq[k]);
    const float turns = static_cast<float>(r * rope_angle::kInvPi);
    const float e = static_cast<float>(fma(-static_cast<double>(turns), rope_angle::kPi, r));
    float s, c;
    sincos_pi(turns, &s, &c);
    cs[2 * k] = c - e * s;
    cs[2 * k + 1] = s + e * c;
  }
}

// Where column j of a head takes its rotation from: its pair k, its partner column, and the sign of
// the partner's term (y = n * cos + sign * n_partner * sin), packed into one int per column
// (partner | k << 8 | (sign > 0) << 16; head_dim <= 256) and kept in shared memory, so the per-element
// work is a lookup rather than a section search.
LF_DEVICE int column_info(const RopeTables& tab, int j) {
  const int axis = j < tab.col_begin[1] ? 0 : (j < tab.col_begin[2] ? 1 : 2);
  const int l = j - tab.col_begin[axis];
  int k, partner, positive;
  if (tab.interleaved) {
    k = tab.pair_begin[axis] + l / 2;
    partner = j ^ 1;  // sections are even, so every pair starts at an even column
    positive = l & 1;
  } else {
    const int half = tab.pair_begin[axis + 1] - tab.pair_begin[axis];
    const bool first = l < half;
    k = tab.pair_begin[axis] + (first ? l : l - half);
    partner = first ? j + half : j - half;
    positive = first ? 0 : 1;
  }
  return partner | (k << 8) | (positive << 16);
}

// Sum of v over each group of `group` threads (a multiple of 32), every thread getting it. Fixed order:
// an xor tree in the warp, then the group's warps in order through scratch (group / 32 floats per
// group). Ends with a block barrier, which also publishes the shared-memory row written before it.
LF_DEVICE float group_sum(float v, int group, int r, float* scratch) {
  for (int off = lf::kWarpSize / 2; off > 0; off /= 2) v += lf::shfl_xor(lf::kFullMask, v, off);
  const int warps = group / lf::kWarpSize;
  float* mine = scratch + r * warps;
  if (lf::lane_id() == 0) mine[(static_cast<int>(threadIdx.x) % group) / lf::kWarpSize] = v;
  lf::syncthreads();
  float sum = 0.f;
  for (int i = 0; i < warps; ++i) sum += mine[i];
  return sum;
}

// Shared memory: the head's column infos (head_dim ints), then for R rows: rows (R x W floats), cos/sin
// (R x head_dim), scratch (R x G / 32); the backward's grad_weight reduction follows (rope_plan.h).
struct Smem {
  const int* info;
  float* row;
  float* cs;
  float* scratch;
};

LF_DEVICE Smem smem_layout(const QkNormRopeFwdParams& p, const RopePlan& plan, int r) {
  int* info = lf::dynamic_smem<int>();
  float* base = lf::dynamic_smem<float>() + p.rope.head_dim;
  const int64_t rows = plan.rows_per_block;
  Smem s;
  s.info = info;
  s.row = base + r * p.width;
  s.cs = base + rows * p.width + r * p.rope.head_dim;
  s.scratch = base + rows * (p.width + p.rope.head_dim);
  return s;
}

// Fills the column infos; published by the first barrier of the row loop, before any use.
LF_DEVICE void fill_column_info(const RopeTables& tab) {
  int* info = lf::dynamic_smem<int>();
  for (int j = static_cast<int>(threadIdx.x); j < tab.head_dim; j += static_cast<int>(blockDim.x))
    info[j] = column_info(tab, j);
}

// The rotated value of column head0 + j of a staged row `src` (already normalised, or a gradient for the
// transpose: sign_mul = -1).
LF_DEVICE float rotate(const Smem& sm, const float* src, int head0, int j, float v, float sign_mul) {
  const int info = sm.info[j];
  const int k = (info >> 8) & 0xFF;
  const float sign = (info >> 16) ? sign_mul : -sign_mul;
  return v * sm.cs[2 * k] + sign * src[head0 + (info & 0xFF)] * sm.cs[2 * k + 1];
}

// The head of a vector's first column (one division per vector); columns then advance with a wrap.
struct HeadCursor {
  int head0, j, d;
  LF_DEVICE HeadCursor(int col, int head_dim) : head0((col / head_dim) * head_dim), j(col - head0), d(head_dim) {}
  LF_DEVICE void next() {
    if (++j == d) {
      j = 0;
      head0 += d;
    }
  }
};

// ---- forward ----

// Grid-stride over steps of R rows; group r of the block takes row step + r. Every thread runs every
// step (the reductions are collectives); inactive groups (past the last row) only join the barriers.
template <typename T, int V>
LF_GLOBAL void LF_LAUNCH_BOUNDS(kMaxGroup) qk_norm_rope_fwd_kernel(const QkNormRopeFwdParams p, const RopePlan plan) {
  const int group = plan.group;
  const int r = static_cast<int>(threadIdx.x) / group, t = static_cast<int>(threadIdx.x) % group;
  const int nvec = static_cast<int>(p.width / V);
  const float inv_w = 1.f / static_cast<float>(p.width);
  const Smem sm = smem_layout(p, plan, r);
  fill_column_info(p.rope);

  const int64_t step = static_cast<int64_t>(gridDim.x) * plan.rows_per_block;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * plan.rows_per_block; first < p.rows; first += step) {
    const int64_t row = first + r;
    const bool active = row < p.rows;
    float ss = 0.f;
    if (active) {
      const T* x_row = static_cast<const T*>(p.x) + row * p.x_row_stride;
      row_cos_sin(p.rope, p.positions + 3 * row, t, group, sm.cs);
      for (int v = t; v < nvec; v += group) {
        const Vec<T, V> xv = load_vec<T, V>(x_row + v * V);
        LF_UNROLL
        for (int e = 0; e < V; ++e) {
          const float f = lf::to_float(xv.e[e]);
          ss += f * f;
          // staged as x * weight; rstd is a common factor applied at the write
          sm.row[v * V + e] = p.weight ? f * p.weight[v * V + e] : f;
        }
      }
    }
    ss = group_sum(ss, group, r, sm.scratch);  // its barrier publishes the staged row and cos/sin
    const float rstd = p.normalize ? rsqrtf(ss * inv_w + p.eps) : 1.f;
    if (active) {
      if (t == 0) p.rstd[row] = rstd;
      T* y_row = static_cast<T*>(p.y) + row * p.width;
      for (int v = t; v < nvec; v += group) {
        Vec<T, V> out;
        HeadCursor hc(v * V, p.rope.head_dim);
        LF_UNROLL
        for (int e = 0; e < V; ++e) {
          out.e[e] = lf::from_float<T>(rstd * rotate(sm, sm.row, hc.head0, hc.j, sm.row[v * V + e], 1.f));
          hc.next();
        }
        store_vec<T, V>(y_row + v * V, out);
      }
    }
    lf::syncthreads();  // the staged row is rewritten by the next step
  }
}

// ---- backward ----

// Block b owns chunk b, rows [b*C, min((b+1)*C, rows)), in steps of R rows. grad_weight partials stay in
// registers (each thread owns fixed columns) and are written once per chunk: to grad_weight itself when
// one chunk covers all rows, else to ws[b] for the finalize kernel.
template <typename T, int V>
LF_GLOBAL void LF_LAUNCH_BOUNDS(kMaxGroup)
    qk_norm_rope_bwd_kernel(const QkNormRopeBwdParams p, const RopePlan plan, float* ws) {
  constexpr int kVecs = owned_vecs<V>();
  const int group = plan.group;
  const int r = static_cast<int>(threadIdx.x) / group, t = static_cast<int>(threadIdx.x) % group;
  const int nvec = static_cast<int>(p.width / V);
  const float inv_w = 1.f / static_cast<float>(p.width);
  const Smem sm = smem_layout(p, plan, r);
  fill_column_info(p.rope);
  const bool want_gw = p.grad_weight != nullptr;

  float acc[kVecs][V];
  LF_UNROLL
  for (int k = 0; k < kVecs; ++k) {
    LF_UNROLL
    for (int e = 0; e < V; ++e) acc[k][e] = 0.f;
  }

  const int64_t c_begin = static_cast<int64_t>(blockIdx.x) * plan.chunk_rows;
  const int64_t c_end = c_begin + plan.chunk_rows < p.rows ? c_begin + plan.chunk_rows : p.rows;
  for (int64_t first = c_begin; first < c_end; first += plan.rows_per_block) {
    const int64_t row = first + r;
    const bool active = row < c_end;
    const int64_t rr = active ? row : 0;
    const T* x_row = static_cast<const T*>(p.x) + rr * p.x_row_stride;
    const T* g_row = static_cast<const T*>(p.grad_y) + rr * p.grad_y_row_stride;
    Vec<T, V> xv[kVecs];
    if (active) {
      row_cos_sin(p.rope, p.positions + 3 * rr, t, group, sm.cs);
      LF_UNROLL
      for (int k = 0; k < kVecs; ++k) {
        const int v = t + k * group;
        if (v < nvec) {
          xv[k] = load_vec<T, V>(x_row + v * V);
          const Vec<T, V> gv = load_vec<T, V>(g_row + v * V);
          LF_UNROLL
          for (int e = 0; e < V; ++e) sm.row[v * V + e] = lf::to_float(gv.e[e]);
        }
      }
    }
    lf::syncthreads();  // the staged gradient row and cos/sin
    // gn = R^T g, kept in registers; dot = sum(gn * weight * x)
    float gn[kVecs][V];
    float dot = 0.f;
    if (active) {
      LF_UNROLL
      for (int k = 0; k < kVecs; ++k) {
        const int v = t + k * group;
        if (v < nvec) {
          HeadCursor hc(v * V, p.rope.head_dim);
          LF_UNROLL
          for (int e = 0; e < V; ++e) {
            const int col = v * V + e;
            gn[k][e] = rotate(sm, sm.row, hc.head0, hc.j, sm.row[col], -1.f);
            hc.next();
            const float w = p.weight ? p.weight[col] : 1.f;
            dot += gn[k][e] * w * lf::to_float(xv[k].e[e]);
          }
        }
      }
    }
    if (p.normalize) dot = group_sum(dot, group, r, sm.scratch);
    if (active) {
      const float rstd = p.saved_rstd[rr];
      const float c = p.normalize ? rstd * rstd * rstd * dot * inv_w : 0.f;
      T* dx_row = static_cast<T*>(p.grad_x) + rr * p.width;
      LF_UNROLL
      for (int k = 0; k < kVecs; ++k) {
        const int v = t + k * group;
        if (v < nvec) {
          Vec<T, V> out;
          LF_UNROLL
          for (int e = 0; e < V; ++e) {
            const int col = v * V + e;
            const float w = p.weight ? p.weight[col] : 1.f;
            const float x = lf::to_float(xv[k].e[e]);
            out.e[e] = lf::from_float<T>(gn[k][e] * w * rstd - x * c);
            acc[k][e] += gn[k][e] * x * rstd;
          }
          store_vec<T, V>(dx_row + v * V, out);
        }
      }
    }
    lf::syncthreads();  // the staged row is rewritten by the next step
  }

  if (!want_gw) return;
  float* dst = plan.grid > 1 ? ws + static_cast<int64_t>(blockIdx.x) * p.width : p.grad_weight;
  if (plan.rows_per_block == 1) {
    LF_UNROLL
    for (int k = 0; k < kVecs; ++k) {
      const int v = t + k * group;
      if (v < nvec) {
        LF_UNROLL
        for (int e = 0; e < V; ++e) dst[v * V + e] = acc[k][e];
      }
    }
    return;
  }
  // The block's R groups add their sums through shared memory, in group order.
  // After the rows' staging areas (rope_plan.h, smem_floats_per_row).
  float* red = lf::dynamic_smem<float>() + p.rope.head_dim +
               plan.rows_per_block * (p.width + p.rope.head_dim + group / lf::kWarpSize);
  LF_UNROLL
  for (int k = 0; k < kVecs; ++k) {
    const int v = t + k * group;
    if (v < nvec) {
      LF_UNROLL
      for (int e = 0; e < V; ++e) red[r * p.width + v * V + e] = acc[k][e];
    }
  }
  lf::syncthreads();
  for (int64_t col = threadIdx.x; col < p.width; col += blockDim.x) {
    float sum = 0.f;
    for (int i = 0; i < plan.rows_per_block; ++i) sum += red[i * p.width + col];
    dst[col] = sum;
  }
}

// grad_weight[col] = sum over chunks, in chunk order, of ws[chunk][col]. One thread per column.
template <int kUnused = 0>  // a template so that the header can be included by several sources
LF_GLOBAL void LF_LAUNCH_BOUNDS(kFinThreads)
    qk_norm_rope_bwd_finalize_kernel(const QkNormRopeBwdParams p, const RopePlan plan, const float* ws) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= p.width) return;
  float sum = 0.f;
  for (int64_t b = 0; b < plan.grid; ++b) sum += ws[b * p.width + col];
  p.grad_weight[col] = sum;
}

}  // namespace lavin_fast::rope_kernels
