// CPU kernels of the fused QK RMSNorm + 3-D RoPE op: one pass over the rows (each row is read from
// memory once and re-read from L1, written once), fp32 math, ATen Vectorized, parallel over rows.
// Compiled once per instruction set with CPU_CAPABILITY = DEFAULT / AVX2 / AVX512.
//
// cos/sin depend on the token and the pair, not on the head, so a row's values are built once and used
// for all of its heads. They come from a per-call table over the distinct position values of each axis
// when it is small (the usual case: t < ~20, h and w < ~64), computed in double and rounded once;
// otherwise from fp32 sin/cos of the angle on the fly, with the angle's rounding corrected to first
// order (see row_cos_sin_direct). Measured at T = 10240, 32 heads x 72, fp32, 1 thread: the table
// path is 1.13x faster than the direct one; LAVIN_FAST_ROPE_TABLE=0 forces the direct path.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/cpu_vec.h"
#include "rope/rope_cpu.h"

#ifndef CPU_CAPABILITY
#error "rope_cpu_kernel.cpp is compiled with -DCPU_CAPABILITY=<DEFAULT|AVX2|AVX512>"
#endif

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {
namespace {

// Rows per parallel task: about 64 KiB of input per task amortises the scheduling.
int64_t row_grain(int64_t w) { return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(w, 1)); }

// Tables of at most this many floats (both cos and sin) stay in L2 next to the rows being processed.
constexpr int64_t kMaxTableFloats = int64_t{1} << 15;

// The columns of one head: the pairs (rope_params.h) and, for the partner gather, runs of consecutive
// columns whose partners are consecutive too (rotate-half: two runs per section; interleaved: one per
// column).
struct HeadLayout {
  int d = 0, num_pairs = 0;
  std::vector<int> j1, j2, axis;           // per pair
  std::vector<int> run_dst, run_src, run_len;

  explicit HeadLayout(const RopeTables& t) : d(t.head_dim), num_pairs(t.num_pairs) {
    for (int a = 0; a < 3; ++a) {
      const int off = t.col_begin[a], n = t.pair_begin[a + 1] - t.pair_begin[a];
      for (int i = 0; i < n; ++i) {
        j1.push_back(t.interleaved ? off + 2 * i : off + i);
        j2.push_back(t.interleaved ? off + 2 * i + 1 : off + n + i);
        axis.push_back(a);
      }
      if (n == 0) continue;
      if (t.interleaved) {
        for (int i = 0; i < n; ++i) {
          add_run(off + 2 * i, off + 2 * i + 1, 1);
          add_run(off + 2 * i + 1, off + 2 * i, 1);
        }
      } else {
        add_run(off, off + n, n);
        add_run(off + n, off, n);
      }
    }
  }
  void add_run(int dst, int src, int len) {
    run_dst.push_back(dst);
    run_src.push_back(src);
    run_len.push_back(len);
  }
  // b[j] = a[partner(j)]
  void gather_partners(const float* a, float* b) const {
    for (size_t i = 0; i < run_dst.size(); ++i) {
      if (run_len[i] == 1) {
        b[run_dst[i]] = a[run_src[i]];
      } else {
        std::memcpy(b + run_dst[i], a + run_src[i], sizeof(float) * run_len[i]);
      }
    }
  }
};

// cos/sin of every (axis, position value, pair of the axis), for positions in [lo[a], lo[a] + count[a]).
struct CosSinTable {
  bool enabled = false;
  int64_t lo[3] = {}, count[3] = {};
  std::vector<float> cos[3], sin[3];  // (count[a], pairs of axis a)
};

bool table_allowed() {
  static const bool allowed = [] {
    const char* v = std::getenv("LAVIN_FAST_ROPE_TABLE");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return allowed;
}

CosSinTable make_table(const QkNormRopeFwdParams& p) {
  CosSinTable tab;
  if (!table_allowed()) return tab;
  const RopeTables& t = p.rope;
  int64_t lo[3], hi[3];
  for (int a = 0; a < 3; ++a) lo[a] = INT64_MAX, hi[a] = INT64_MIN;
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int a = 0; a < 3; ++a) {
      const int64_t v = p.positions[3 * r + a];
      lo[a] = std::min(lo[a], v);
      hi[a] = std::max(hi[a], v);
    }
  }
  int64_t floats = 0;
  for (int a = 0; a < 3; ++a) floats += 2 * (hi[a] - lo[a] + 1) * (t.pair_begin[a + 1] - t.pair_begin[a]);
  if (floats > kMaxTableFloats) return tab;
  tab.enabled = true;
  for (int a = 0; a < 3; ++a) {
    const int k0 = t.pair_begin[a], n = t.pair_begin[a + 1] - k0;
    tab.lo[a] = lo[a];
    tab.count[a] = hi[a] - lo[a] + 1;
    tab.cos[a].resize(tab.count[a] * n);
    tab.sin[a].resize(tab.count[a] * n);
    for (int64_t v = 0; v < tab.count[a]; ++v) {
      for (int i = 0; i < n; ++i) {
        const double f = static_cast<double>(t.inv_freq_hi[k0 + i]) + static_cast<double>(t.inv_freq_lo[k0 + i]);
        const double ang = static_cast<double>(lo[a] + v) * f;
        tab.cos[a][v * n + i] = static_cast<float>(std::cos(ang));
        tab.sin[a][v * n + i] = static_cast<float>(std::sin(ang));
      }
    }
  }
  return tab;
}

// Per-task scratch: a row's cos/sin per column (C, and S signed: -sin on j1, +sin on j2, so that
// y = a * C + partner(a) * S), the pairs' values, and fp32 rows.
struct Scratch {
  std::vector<float> pc, ps, ang, err, C, S, A, B, row;
  Scratch(int num_pairs, int d, int64_t w)
      : pc(num_pairs), ps(num_pairs), ang(num_pairs), err(num_pairs), C(d), S(d), A(d), B(d), row(w) {}
};

// fp32 sin/cos of angle = pos * (hi + lo). The product pos * hi is rounded to fp32 (an error of up to
// half an ulp of the angle: 1e-6 rad at angle 32, 8e-3 at 2e5); e = the exact remainder (FMA) +
// pos * lo is added back to second order: cos(a + e) ~ cos a (1 - e^2/2) - e sin a, and likewise sin.
void row_cos_sin_direct(const RopeTables& t, const HeadLayout& L, const int32_t* pos, Scratch& s) {
  for (int k = 0; k < L.num_pairs; ++k) {
    const float pf = static_cast<float>(pos[L.axis[k]]);
    const float a = pf * t.inv_freq_hi[k];
    s.ang[k] = a;
    s.err[k] = std::fma(pf, t.inv_freq_hi[k], -a) + pf * t.inv_freq_lo[k];
  }
  int64_t k = 0;
  for (; k + fVec::size() <= L.num_pairs; k += fVec::size()) {
    const fVec a = fVec::loadu(s.ang.data() + k);
    a.sin().store(s.ps.data() + k);
    a.cos().store(s.pc.data() + k);
  }
  if (k < L.num_pairs) {
    const int64_t n = L.num_pairs - k;
    const fVec a = fVec::loadu(s.ang.data() + k, n);
    a.sin().store(s.ps.data() + k, n);
    a.cos().store(s.pc.data() + k, n);
  }
  for (int i = 0; i < L.num_pairs; ++i) {
    const float c = s.pc[i], sn = s.ps[i], e = s.err[i], q = 1.f - 0.5f * e * e;
    s.pc[i] = c * q - e * sn;
    s.ps[i] = sn * q + e * c;
  }
}

void row_cos_sin(const QkNormRopeFwdParams& p, const HeadLayout& L, const CosSinTable& tab, int64_t r, Scratch& s) {
  const int32_t* pos = p.positions + 3 * r;
  if (tab.enabled) {
    for (int a = 0; a < 3; ++a) {
      const int k0 = p.rope.pair_begin[a], n = p.rope.pair_begin[a + 1] - k0;
      if (n == 0) continue;
      const int64_t v = pos[a] - tab.lo[a];
      std::memcpy(s.pc.data() + k0, tab.cos[a].data() + v * n, sizeof(float) * n);
      std::memcpy(s.ps.data() + k0, tab.sin[a].data() + v * n, sizeof(float) * n);
    }
  } else {
    row_cos_sin_direct(p.rope, L, pos, s);
  }
  for (int k = 0; k < L.num_pairs; ++k) {
    s.C[L.j1[k]] = s.C[L.j2[k]] = s.pc[k];
    s.S[L.j1[k]] = -s.ps[k];
    s.S[L.j2[k]] = s.ps[k];
  }
}

template <typename T>
float sum_of_squares(const T* x, int64_t d) {
  fVec acc0(0.f), acc1(0.f);
  for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
    fVec a, b;
    Chunk<T>::load(x + j, n, tag, a, b);
    acc0 = at::vec::fmadd(a, a, acc0);
    acc1 = at::vec::fmadd(b, b, acc1);
  });
  return at::vec::vec_reduce_all([](fVec u, fVec v) { return u + v; }, acc0 + acc1);
}

// Whether row r of a (rows, w) contiguous output of T may be written with streaming stores.
template <typename T>
bool stream_row(const void* base, int64_t rows, int64_t w, int64_t r) {
  if (rows * w * static_cast<int64_t>(sizeof(T)) < kStreamMinBytes) return false;
  return (reinterpret_cast<uintptr_t>(static_cast<const T*>(base) + r * w) % kStreamAlign) == 0;
}

// out[0, w) = row (fp32) converted to T.
template <typename T>
void store_row(T* out, const float* row, int64_t w, bool stream) {
  for_each_chunk(w, [&](int64_t j, int64_t n, auto tag) {
    fVec a, b;
    Chunk<float>::load(row + j, n, tag, a, b);
    if constexpr (decltype(tag)::value) {
      if (stream) {
        Chunk<T>::stream(out + j, a, b);
        return;
      }
    }
    Chunk<T>::store(out + j, n, tag, a, b);
  });
}

template <typename T>
void fwd_range(const QkNormRopeFwdParams& p, const HeadLayout& L, const CosSinTable& tab, int64_t begin,
               int64_t end) {
  const int64_t w = p.width, d = L.d;
  Scratch s(L.num_pairs, L.d, w);
  for (int64_t r = begin; r < end; ++r) {
    const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
    const float rstd = p.normalize ? 1.f / std::sqrt(sum_of_squares(x, w) / static_cast<float>(w) + p.eps) : 1.f;
    p.rstd[r] = rstd;
    row_cos_sin(p, L, tab, r, s);
    const fVec vr(rstd);
    for (int64_t h = 0; h < p.num_heads; ++h) {
      const T* xh = x + h * d;
      const float* wh = p.weight ? p.weight + h * d : nullptr;
      for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
        fVec a, b;
        Chunk<T>::load(xh + j, n, tag, a, b);
        a = a * vr;
        b = b * vr;
        if (wh) {
          fVec wa, wb;
          Chunk<float>::load(wh + j, n, tag, wa, wb);
          a = a * wa;
          b = b * wb;
        }
        Chunk<float>::store(s.A.data() + j, n, tag, a, b);
      });
      L.gather_partners(s.A.data(), s.B.data());
      float* yh = s.row.data() + h * d;
      for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
        fVec a0, a1, b0, b1, c0, c1, s0, s1;
        Chunk<float>::load(s.A.data() + j, n, tag, a0, a1);
        Chunk<float>::load(s.B.data() + j, n, tag, b0, b1);
        Chunk<float>::load(s.C.data() + j, n, tag, c0, c1);
        Chunk<float>::load(s.S.data() + j, n, tag, s0, s1);
        Chunk<float>::store(yh + j, n, tag, at::vec::fmadd(b0, s0, a0 * c0), at::vec::fmadd(b1, s1, a1 * c1));
      });
    }
    store_row(static_cast<T*>(p.y) + r * w, s.row.data(), w, stream_row<T>(p.y, p.rows, w, r));
  }
  stream_fence();
}

template <typename T>
void fwd_typed(const QkNormRopeFwdParams& p) {
  const HeadLayout L(p.rope);
  const CosSinTable tab = make_table(p);
  at::parallel_for(0, p.rows, row_grain(p.width), [&](int64_t b, int64_t e) { fwd_range<T>(p, L, tab, b, e); });
}

// Backward of row r: gn = R^T g per head (into s.row), then the RMSNorm backward. Adds gn * x * rstd
// to acc (W floats) when given.
template <typename T>
void bwd_row(const QkNormRopeBwdParams& p, const HeadLayout& L, const CosSinTable& tab, int64_t r, Scratch& s,
             float* acc) {
  const int64_t w = p.width, d = L.d;
  const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
  const T* g = static_cast<const T*>(p.grad_y) + r * p.grad_y_row_stride;
  const float rstd = p.saved_rstd[r];
  row_cos_sin(p, L, tab, r, s);
  // R^T: gn[j] = g[j] * C[j] - g[partner(j)] * S[j]
  for (int64_t h = 0; h < p.num_heads; ++h) {
    for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
      fVec a, b;
      Chunk<T>::load(g + h * d + j, n, tag, a, b);
      Chunk<float>::store(s.A.data() + j, n, tag, a, b);
    });
    L.gather_partners(s.A.data(), s.B.data());
    float* gn = s.row.data() + h * d;
    for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
      fVec a0, a1, b0, b1, c0, c1, s0, s1;
      Chunk<float>::load(s.A.data() + j, n, tag, a0, a1);
      Chunk<float>::load(s.B.data() + j, n, tag, b0, b1);
      Chunk<float>::load(s.C.data() + j, n, tag, c0, c1);
      Chunk<float>::load(s.S.data() + j, n, tag, s0, s1);
      Chunk<float>::store(gn + j, n, tag, a0 * c0 - b0 * s0, a1 * c1 - b1 * s1);
    });
  }
  const float* gn = s.row.data();
  const auto load_w = [&](int64_t j, int64_t n, auto tag, fVec& wa, fVec& wb) {
    if (p.weight) {
      Chunk<float>::load(p.weight + j, n, tag, wa, wb);
    } else {
      wa = wb = fVec(1.f);
    }
  };
  float c = 0.f;
  if (p.normalize) {
    fVec dot0(0.f), dot1(0.f);
    for_each_chunk(w, [&](int64_t j, int64_t n, auto tag) {
      fVec ga, gb, xa, xb, wa, wb;
      Chunk<float>::load(gn + j, n, tag, ga, gb);
      Chunk<T>::load(x + j, n, tag, xa, xb);
      load_w(j, n, tag, wa, wb);
      dot0 = at::vec::fmadd(ga * wa, xa, dot0);
      dot1 = at::vec::fmadd(gb * wb, xb, dot1);
    });
    const float dot = at::vec::vec_reduce_all([](fVec u, fVec v) { return u + v; }, dot0 + dot1);
    c = rstd * rstd * rstd * dot / static_cast<float>(w);
  }
  // grad_x = rstd * gn*w - c * x, written into s.row in place, then stored
  const fVec vr(rstd), vc(c);
  float* out = s.row.data();
  for_each_chunk(w, [&](int64_t j, int64_t n, auto tag) {
    fVec ga, gb, xa, xb, wa, wb;
    Chunk<float>::load(gn + j, n, tag, ga, gb);
    Chunk<T>::load(x + j, n, tag, xa, xb);
    load_w(j, n, tag, wa, wb);
    if (acc) {
      fVec aa, ab;
      Chunk<float>::load(acc + j, n, tag, aa, ab);
      Chunk<float>::store(acc + j, n, tag, at::vec::fmadd(ga * xa, vr, aa), at::vec::fmadd(gb * xb, vr, ab));
    }
    Chunk<float>::store(out + j, n, tag, (ga * wa) * vr - xa * vc, (gb * wb) * vr - xb * vc);
  });
  store_row(static_cast<T*>(p.grad_x) + r * w, out, w, stream_row<T>(p.grad_x, p.rows, w, r));
}

// grad_weight: rows are cut into at most kReductionBlocks blocks by shape alone (never by the thread
// count); each block sums its rows into a partial row, and the partials are added in block order, so
// the result is bitwise the same for any number of threads.
constexpr int64_t kReductionBlocks = 64;

template <typename T>
void bwd_typed(const QkNormRopeBwdParams& p) {
  const HeadLayout L(p.rope);
  const CosSinTable tab = make_table(p);
  const int64_t w = p.width;
  if (!p.grad_weight) {
    at::parallel_for(0, p.rows, row_grain(w), [&](int64_t b, int64_t e) {
      Scratch s(L.num_pairs, L.d, w);
      for (int64_t r = b; r < e; ++r) bwd_row<T>(p, L, tab, r, s, nullptr);
      stream_fence();
    });
    return;
  }
  const int64_t block_rows = std::max<int64_t>(1, (p.rows + kReductionBlocks - 1) / kReductionBlocks);
  const int64_t blocks = (p.rows + block_rows - 1) / block_rows;
  std::vector<float> partial(blocks > 1 ? blocks * w : 0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    Scratch s(L.num_pairs, L.d, w);
    for (int64_t b = b0; b < b1; ++b) {
      float* acc = blocks > 1 ? partial.data() + b * w : p.grad_weight;
      std::fill(acc, acc + w, 0.f);
      const int64_t r1 = std::min(p.rows, (b + 1) * block_rows);
      for (int64_t r = b * block_rows; r < r1; ++r) bwd_row<T>(p, L, tab, r, s, acc);
    }
    stream_fence();
  });
  if (blocks == 1) return;
  std::fill(p.grad_weight, p.grad_weight + w, 0.f);
  for (int64_t b = 0; b < blocks; ++b)
    at::vec::map2<float>([](fVec u, fVec v) { return u + v; }, p.grad_weight, p.grad_weight,
                         partial.data() + b * w, w);
}

void fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return fwd_typed<float>(p);
    case c10::kBFloat16: return fwd_typed<c10::BFloat16>(p);
    case c10::kHalf: return fwd_typed<c10::Half>(p);
    default: TORCH_INTERNAL_ASSERT(false, "qk_norm_rope_fwd: unsupported dtype ", dtype);
  }
}

void bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return bwd_typed<float>(p);
    case c10::kBFloat16: return bwd_typed<c10::BFloat16>(p);
    case c10::kHalf: return bwd_typed<c10::Half>(p);
    default: TORCH_INTERNAL_ASSERT(false, "qk_norm_rope_bwd: unsupported dtype ", dtype);
  }
}

}  // namespace
}  // namespace CPU_CAPABILITY

#define LF_CONCAT_(a, b) a##b
#define LF_CONCAT(a, b) LF_CONCAT_(a, b)
extern const RopeCpuKernels LF_CONCAT(kRopeCpuKernels_, CPU_CAPABILITY) = {&CPU_CAPABILITY::fwd,
                                                                           &CPU_CAPABILITY::bwd};

}  // namespace lavin_fast::cpu
