// CPU kernels of the fused QK RMSNorm + 3-D RoPE op: one pass over the rows (each row is read from
// memory once and re-read from L1, written once), fp32 math, ATen Vectorized, parallel over rows.
// Compiled once per instruction set with CPU_CAPABILITY = DEFAULT / AVX2 / AVX512.
//
// cos/sin depend on the token and the pair, not on the head, so a row's values are built once and used
// for all of its heads. They come from a per-call table over the distinct position values of each axis
// when it is small (the usual case: t < ~20, h and w < ~64), computed in double and rounded once;
// otherwise from fp32 sin/cos on the fly, of the angle computed and reduced to [-pi, pi] in double
// (rope_angle.h; see row_cos_sin_direct), which holds for every int32 position. Speed does not decide
// between them: at T = 10240, k (8 heads x 72, bf16), one thread, the forward took 2.2-2.9 ms of CPU
// time with the table and 2.4-3.0 ms without, within this shared machine's noise (36 sincos per 576
// elements is cheap). The table is kept for its correctly rounded values; LAVIN_FAST_ROPE_TABLE=0
// forces the direct path.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "common/cpu_isa.h"
#include "common/cpu_vec.h"
#include "rope/rope_angle.h"
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

// Buffers are padded by this many floats past their end: the rotation works in whole vectors and lets
// the last vector of a run spill into the next run (or the padding), which is written after it.
constexpr int64_t kPad = 2 * fVec::size();

// The pairs of a head (rope_params.h), for the cos/sin of a row.
struct HeadLayout {
  int d = 0, num_pairs = 0;
  std::vector<int> j1, j2, axis;  // per pair

  explicit HeadLayout(const RopeTables& t) : d(t.head_dim), num_pairs(t.num_pairs) {
    for (int a = 0; a < 3; ++a) {
      const int off = t.col_begin[a], n = t.pair_begin[a + 1] - t.pair_begin[a];
      for (int i = 0; i < n; ++i) {
        j1.push_back(t.interleaved ? off + 2 * i : off + i);
        j2.push_back(t.interleaved ? off + 2 * i + 1 : off + n + i);
        axis.push_back(a);
      }
    }
  }
};

// (a0, a1, a2, a3, ...) -> (a1, a0, a3, a2, ...): each interleaved pair's partner.
inline fVec swap_pairs(const fVec& a) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_permute_ps(a, 0xB1);
#elif defined(CPU_CAPABILITY_AVX2)
  return _mm256_permute_ps(a, 0xB1);
#else
  float buf[fVec::size()];
  a.store(buf);
  for (int i = 0; i < fVec::size(); i += 2) std::swap(buf[i], buf[i + 1]);
  return fVec::loadu(buf);
#endif
}

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
        // the reference's float64 angle; std::sin/cos reduce any argument exactly
        const double ang = static_cast<double>(lo[a] + v) * t.inv_freq[k0 + i];
        tab.cos[a][v * n + i] = static_cast<float>(std::cos(ang));
        tab.sin[a][v * n + i] = static_cast<float>(std::sin(ang));
      }
    }
  }
  return tab;
}

// Per-task scratch: a row's cos/sin per pair (pc, ps) and, for interleaved pairs, per column (C, and S
// signed: -sin on j1, +sin on j2, so that y = a * C + swap_pairs(a) * S); fp32 rows. Zero-filled, so
// the padding never holds NaN or denormals.
struct Scratch {
  std::vector<float> pc, ps, ang, err, C, S, A, Y;
  Scratch(int num_pairs, int d, int64_t w)
      : pc(num_pairs + kPad), ps(num_pairs + kPad), ang(num_pairs), err(num_pairs), C(d + kPad), S(d + kPad),
        A(w + kPad), Y(w + kPad) {}
};

// fp32 sin/cos of the angle reduced to r in [-pi, pi] in double (rope_angle.h), taken at the fp32
// rf = float(r); e = r - rf (|e| <= 2e-7, exact in double) is added back to first order:
// cos(rf + e) ~ cos rf - e sin rf, sin(rf + e) ~ sin rf + e cos rf (the e^2 terms are below 2e-14).
void row_cos_sin_direct(const RopeTables& t, const HeadLayout& L, const int32_t* pos, Scratch& s) {
  for (int k = 0; k < L.num_pairs; ++k) {
    const double r = rope_angle::reduced_angle(pos[L.axis[k]], t.inv_freq[k]);
    const float rf = static_cast<float>(r);
    s.ang[k] = rf;
    s.err[k] = static_cast<float>(r - static_cast<double>(rf));
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
    const float c = s.pc[i], sn = s.ps[i], e = s.err[i];
    s.pc[i] = c - e * sn;
    s.ps[i] = sn + e * c;
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
  if (!p.rope.interleaved) return;
  for (int k = 0; k < L.num_pairs; ++k) {
    s.C[L.j1[k]] = s.C[L.j2[k]] = s.pc[k];
    s.S[L.j1[k]] = -s.ps[k];
    s.S[L.j2[k]] = s.ps[k];
  }
}

// out = R(in) for every head of a row (sign = -1: the transpose R^T). in and out are fp32 rows padded
// by kPad. Rotate-half: per section, y1 = a1 cos - a2 sin, y2 = a2 cos + a1 sin over whole vectors,
// the y1 vectors first (a spill past y1 lands in y2, written next), then y2 (a spill lands in the next
// section, head, or the padding). Interleaved: whole vectors of pairs, swapped in-register.
void rotate_row(const RopeTables& t, int64_t heads, const float* in, float* out, const Scratch& s, float sign) {
  constexpr int64_t V = fVec::size();
  const int64_t d = t.head_dim;
  const fVec vs(sign);
  if (t.interleaved) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t j = 0; j < d; j += V) {
        const fVec a = fVec::loadu(in + h * d + j);
        const fVec sn = fVec::loadu(s.S.data() + j) * vs;
        at::vec::fmadd(swap_pairs(a), sn, a * fVec::loadu(s.C.data() + j)).store(out + h * d + j);
      }
    }
    return;
  }
  for (int64_t h = 0; h < heads; ++h) {
    for (int a = 0; a < 3; ++a) {
      const int64_t n = t.pair_begin[a + 1] - t.pair_begin[a];
      const int64_t off = h * d + t.col_begin[a];
      const float* c = s.pc.data() + t.pair_begin[a];
      const float* sn = s.ps.data() + t.pair_begin[a];
      if (n <= V || n % V == 0) {
        // No vector of y1 spills over y2 values already written: one loop, a1 and a2 loaded once.
        for (int64_t i = 0; i < n; i += V) {
          const fVec a1 = fVec::loadu(in + off + i), a2 = fVec::loadu(in + off + n + i);
          const fVec cv = fVec::loadu(c + i), sv = fVec::loadu(sn + i) * vs;
          (a1 * cv - a2 * sv).store(out + off + i);
          at::vec::fmadd(a1, sv, a2 * cv).store(out + off + n + i);
        }
        continue;
      }
      for (int64_t i = 0; i < n; i += V) {
        const fVec a1 = fVec::loadu(in + off + i), a2 = fVec::loadu(in + off + n + i);
        (a1 * fVec::loadu(c + i) - a2 * (fVec::loadu(sn + i) * vs)).store(out + off + i);
      }
      for (int64_t i = 0; i < n; i += V) {
        const fVec a1 = fVec::loadu(in + off + i), a2 = fVec::loadu(in + off + n + i);
        at::vec::fmadd(a1, fVec::loadu(sn + i) * vs, a2 * fVec::loadu(c + i)).store(out + off + n + i);
      }
    }
  }
}

// Whether row r of a (rows, w) contiguous output of T may be written with streaming stores.
template <typename T>
bool stream_row(const void* base, int64_t rows, int64_t w, int64_t r) {
  if (rows * w * static_cast<int64_t>(sizeof(T)) < kStreamMinBytes) return false;
  return (reinterpret_cast<uintptr_t>(static_cast<const T*>(base) + r * w) % kStreamAlign) == 0;
}

// out[0, w) = row (fp32) * scale, converted to T.
template <typename T>
void store_row(T* out, const float* row, int64_t w, float scale, bool stream) {
  const fVec vs(scale);
  for_each_chunk(w, [&](int64_t j, int64_t n, auto tag) {
    fVec a, b;
    Chunk<float>::load(row + j, n, tag, a, b);
    a = a * vs;
    b = b * vs;
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
  const int64_t w = p.width;
  Scratch s(L.num_pairs, L.d, w);
  for (int64_t r = begin; r < end; ++r) {
    const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
    // One pass over x: the sum of squares, and A = x * weight. The rotation is linear, so rstd (a
    // per-row scalar) is applied after it, at the store.
    float* A = s.A.data();
    fVec acc0(0.f), acc1(0.f);
    for_each_chunk(w, [&](int64_t j, int64_t n, auto tag) {
      fVec a, b;
      Chunk<T>::load(x + j, n, tag, a, b);
      acc0 = at::vec::fmadd(a, a, acc0);
      acc1 = at::vec::fmadd(b, b, acc1);
      if (p.weight) {
        fVec wa, wb;
        Chunk<float>::load(p.weight + j, n, tag, wa, wb);
        a = a * wa;
        b = b * wb;
      }
      Chunk<float>::store(A + j, n, tag, a, b);
    });
    const float ss = at::vec::vec_reduce_all([](fVec u, fVec v) { return u + v; }, acc0 + acc1);
    const float rstd = p.normalize ? 1.f / std::sqrt(ss / static_cast<float>(w) + p.eps) : 1.f;
    p.rstd[r] = rstd;
    row_cos_sin(p, L, tab, r, s);
    rotate_row(p.rope, p.num_heads, A, s.Y.data(), s, 1.f);
    store_row(static_cast<T*>(p.y) + r * w, s.Y.data(), w, rstd, stream_row<T>(p.y, p.rows, w, r));
  }
  stream_fence();
}

template <typename T>
void fwd_typed(const QkNormRopeFwdParams& p) {
  const HeadLayout L(p.rope);
  const CosSinTable tab = make_table(p);
  at::parallel_for(0, p.rows, row_grain(p.width), [&](int64_t b, int64_t e) { fwd_range<T>(p, L, tab, b, e); });
}

// Backward of row r: gn = R^T g per head (into s.Y), then the RMSNorm backward. Adds gn * x * rstd
// to acc (W floats) when given.
template <typename T>
void bwd_row(const QkNormRopeBwdParams& p, const HeadLayout& L, const CosSinTable& tab, int64_t r, Scratch& s,
             float* acc) {
  const int64_t w = p.width;
  const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
  const T* g = static_cast<const T*>(p.grad_y) + r * p.grad_y_row_stride;
  const float rstd = p.saved_rstd[r];
  row_cos_sin(p, L, tab, r, s);
  // gn = R^T g
  for_each_chunk(w, [&](int64_t j, int64_t n, auto tag) {
    fVec a, b;
    Chunk<T>::load(g + j, n, tag, a, b);
    Chunk<float>::store(s.A.data() + j, n, tag, a, b);
  });
  rotate_row(p.rope, p.num_heads, s.A.data(), s.Y.data(), s, -1.f);
  const float* gn = s.Y.data();
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
  // grad_x = rstd * gn*w - c * x, written into Y in place, then stored
  const fVec vr(rstd), vc(c);
  float* out = s.Y.data();
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
  store_row(static_cast<T*>(p.grad_x) + r * w, out, w, 1.f, stream_row<T>(p.grad_x, p.rows, w, r));
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

LAVIN_FAST_DEFINE_ISA_TABLE(RopeCpuKernels, kRopeCpuKernels, &CPU_CAPABILITY::fwd, &CPU_CAPABILITY::bwd);

}  // namespace lavin_fast::cpu
