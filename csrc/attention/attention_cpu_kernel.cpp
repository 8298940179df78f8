// CPU kernels of varlen attention: tiled online-softmax attention with fp32 compute for fp32, bf16 and
// fp16 inputs, and a FlashAttention-2-style backward that recomputes P from the saved lse.
//
// Work items are (segment, KV head, block of rows). The G = H / H_kv query heads that share a KV head
// are stacked into one block of G * BQ query rows, so every K/V tile is converted to fp32 once and
// reused by the whole group. Key tiles that the masks hide entirely are skipped before any compute;
// element masking runs only on partially visible tiles. The products q.k and p.v are register-blocked
// GEMMs (attention_cpu_gemm.h) on fp32 tiles packed per item.
//
// Backward: dK/dV per (segment, KV head, key tile) summing over the group's query heads and blocks in
// a fixed order, then dQ per (segment, KV head, query block) in a second pass that recomputes P and
// dP (two more tile products than FlashAttention-2's atomic dQ, but no atomics and no S^2 scratch),
// so every gradient is bitwise independent of the thread count.
//
// Compiled once per instruction set with CPU_CAPABILITY = DEFAULT / AVX2 / AVX512.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "attention/attention_cpu.h"
#include "attention/attention_cpu_gemm.h"
#include "attention/attention_cpu_tiles.h"
#include "common/cpu_vec.h"

#ifndef CPU_CAPABILITY
#error "attention_cpu_kernel.cpp is compiled with -DCPU_CAPABILITY=<DEFAULT|AVX2|AVX512>"
#endif

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {
namespace {

// Keys per tile: four AVX-512 vectors, one GEMM column panel of S.
constexpr int kBK = 64;

// Query rows per block: about 128 stacked rows per group (G * BQ), so a K/V tile is reused that often
// while S (128 x 64) and the accumulators stay in L2.
int rows_per_block(int group) { return std::clamp(128 / group, 16, 64); }

template <typename T>
inline void load_row(const T* x, int64_t d, float mul, float* y) {
  const fVec vm(mul);
  for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
    fVec a, b;
    Chunk<T>::load(x + j, n, tag, a, b);
    Chunk<float>::store(y + j, n, tag, a * vm, b * vm);
  });
}

template <typename T>
inline void store_row(const float* x, int64_t d, float mul, T* y) {
  const fVec vm(mul);
  for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
    fVec a, b;
    Chunk<float>::load(x + j, n, tag, a, b);
    Chunk<T>::store(y + j, n, tag, a * vm, b * vm);
  });
}

inline float row_max(const float* x, int64_t n) {  // n % kVec == 0
  fVec m(kNegInf);
  for (int64_t j = 0; j < n; j += kVec) m = at::vec::maximum(m, fVec::loadu(x + j));
  return at::vec::vec_reduce_all([](fVec a, fVec b) { return at::vec::maximum(a, b); }, m);
}

inline void scale_row(float* x, int64_t n, float a) {
  const fVec va(a);
  for (int64_t j = 0; j < n; j += kVec) (fVec::loadu(x + j) * va).store(x + j);
}

inline void add_row(float* x, const float* y, int64_t n) {
  for (int64_t j = 0; j < n; j += kVec) (fVec::loadu(x + j) + fVec::loadu(y + j)).store(x + j);
}

// Per-thread fp32 tiles, sized for the largest block. Layouts (row-major, lead dimension last):
struct Tiles {
  int D, Dp, BQ, M;
  std::vector<float> q;     // (M, Dp)   scaled query rows of the G heads, stacked head-major
  std::vector<float> acc;   // (M, Dp)   O (forward) or dQ accumulator
  std::vector<float> s;     // (M, kBK)  scores, then P
  std::vector<float> dp;    // (M, kBK)  dP, then dS
  std::vector<float> dout;  // (M, Dp)   grad_out rows
  std::vector<float> kt;    // (Dp, kBK) K^T
  std::vector<float> vt;    // (Dp, kBK) V^T
  std::vector<float> k;     // (kBK, Dp) K
  std::vector<float> v;     // (kBK, Dp) V
  std::vector<float> dk;    // (kBK, Dp)
  std::vector<float> dv;    // (kBK, Dp)
  std::vector<float> mask;  // (BQ, kBK) additive 0 / -inf
  std::vector<float> m, l;  // (M,) running max and sum (forward); lse and delta (backward)
  std::vector<float> row;   // (Dp,) scratch
  std::vector<float> dq;    // (blocks, M, Dp) dQ of a whole segment (fused backward)

  Tiles(int d, int group, bool backward)
      : D(d), Dp(static_cast<int>(round_up(d, kVec))), BQ(rows_per_block(group)), M(group * BQ) {
    q.assign(size_t(M) * Dp, 0.f);
    acc.assign(size_t(M) * Dp, 0.f);
    s.assign(size_t(M) * kBK, 0.f);
    kt.assign(size_t(Dp) * kBK, 0.f);
    mask.assign(size_t(BQ) * kBK, 0.f);
    m.assign(M, 0.f);
    l.assign(M, 0.f);
    row.assign(Dp, 0.f);
    if (!backward) {
      v.assign(size_t(kBK) * Dp, 0.f);
      return;
    }
    dp.assign(size_t(M) * kBK, 0.f);
    dout.assign(size_t(M) * Dp, 0.f);
    vt.assign(size_t(Dp) * kBK, 0.f);
    k.assign(size_t(kBK) * Dp, 0.f);
    dk.assign(size_t(kBK) * Dp, 0.f);
    dv.assign(size_t(kBK) * Dp, 0.f);
  }
};

// Rows of a (row, head)-strided tensor.
template <typename T>
struct Rows {
  const T* base;
  int64_t row_stride, head_stride;
  const T* at(int64_t row, int64_t head) const { return base + row * row_stride + head * head_stride; }
};

// Key tile [j0, j0 + nk) of KV head hk as (D, nkp) transposed fp32, padding columns zero.
template <typename T>
void pack_transposed(const Rows<T>& src, int64_t row0, int hk, int64_t nk, int64_t nkp, Tiles& t,
                     float* dst) {
  float* tmp = t.row.data();
  for (int64_t j = 0; j < nk; ++j) {
    load_row(src.at(row0 + j, hk), t.D, 1.f, tmp);
    for (int d = 0; d < t.D; ++d) dst[d * nkp + j] = tmp[d];
  }
  for (int d = 0; d < t.D; ++d)
    for (int64_t j = nk; j < nkp; ++j) dst[d * nkp + j] = 0.f;
}

// ---- forward ----

template <typename T>
void fwd_item(const VarlenAttentionFwdParams& p, const WorkItem& it, Tiles& t) {
  const int G = p.num_heads / p.num_kv_heads, D = t.D, Dp = t.Dp;
  const Segment g = segment(p, it.s);
  const SegmentMask mask{p.mask, g};
  const int64_t i0 = it.r0, nq = it.n;
  const int M = static_cast<int>(G * nq);
  const Rows<T> q{static_cast<const T*>(p.q), p.q_row_stride, p.q_head_stride};
  const Rows<T> k{static_cast<const T*>(p.k), p.k_row_stride, p.k_head_stride};
  const Rows<T> v{static_cast<const T*>(p.v), p.v_row_stride, p.v_head_stride};

  for (int hh = 0; hh < G; ++hh)
    for (int64_t i = 0; i < nq; ++i)
      load_row(q.at(g.q0 + i0 + i, it.hk * G + hh), D, p.softmax_scale, &t.q[(hh * nq + i) * D]);
  std::fill_n(t.acc.begin(), size_t(M) * Dp, 0.f);
  std::fill_n(t.m.begin(), M, kNegInf);
  std::fill_n(t.l.begin(), M, 0.f);
  const auto fq = mask.query_frames(i0, nq);

  for (int64_t j0 = 0; j0 < g.lk; j0 += kBK) {
    const int64_t nk = std::min<int64_t>(kBK, g.lk - j0), nkp = round_up(nk, kVec);
    Visibility vis = mask.block(i0, nq, j0, nk, fq);
    if (vis == Visibility::kNone) continue;
    if (nk != nkp) vis = Visibility::kPartial;  // padding columns need masking
    pack_transposed(k, g.k0 + j0, it.hk, nk, nkp, t, t.kt.data());
    for (int64_t j = 0; j < nk; ++j) load_row(v.at(g.k0 + j0 + j, it.hk), D, 1.f, &t.v[j * Dp]);

    float* s = t.s.data();
    gemm<false>(M, static_cast<int>(nkp), D, t.q.data(), D, t.kt.data(), nkp, s, nkp);
    if (vis == Visibility::kPartial) {
      mask.fill(i0, nq, j0, nk, nkp, t.mask.data());
      for (int r = 0; r < M; ++r) add_row(s + r * nkp, &t.mask[(r % nq) * nkp], nkp);
    }
    // Online softmax: rescale what was accumulated when a row's running max grows.
    for (int r = 0; r < M; ++r) {
      float* sr = s + r * nkp;
      const float m_new = std::max(t.m[r], row_max(sr, nkp));
      if (m_new == kNegInf) {  // nothing visible yet in this row: P = 0
        std::fill_n(sr, nkp, 0.f);
        continue;
      }
      const float alpha = std::exp(t.m[r] - m_new);  // 0 when the row had seen nothing
      const fVec vm(m_new);
      fVec sum(0.f);
      for (int64_t j = 0; j < nkp; j += kVec) {
        const fVec e = (fVec::loadu(sr + j) - vm).exp_u20();
        e.store(sr + j);
        sum = sum + e;
      }
      t.l[r] = t.l[r] * alpha + at::vec::vec_reduce_all([](fVec a, fVec b) { return a + b; }, sum);
      if (alpha != 1.f) scale_row(&t.acc[r * Dp], Dp, alpha);
      t.m[r] = m_new;
    }
    gemm<true>(M, Dp, static_cast<int>(nk), s, nkp, t.v.data(), Dp, t.acc.data(), Dp);
  }

  const int H = p.num_heads;
  for (int hh = 0; hh < G; ++hh) {
    const int h = it.hk * G + hh;
    for (int64_t i = 0; i < nq; ++i) {
      const int r = static_cast<int>(hh * nq + i);
      const int64_t row = g.q0 + i0 + i;
      const bool seen = t.l[r] > 0.f;
      store_row(&t.acc[r * Dp], D, seen ? 1.f / t.l[r] : 0.f, static_cast<T*>(p.out) + (row * H + h) * D);
      p.lse[h * p.total_q + row] = seen ? t.m[r] + std::log(t.l[r]) : kNegInf;
    }
  }
}

// Items over query blocks: (segment, KV head, block of BQ query rows), cost ~ rows x keys.
std::vector<WorkItem> query_items(const VarlenAttentionFwdParams& p, int BQ) {
  std::vector<WorkItem> items;
  const int G = p.num_heads / p.num_kv_heads;
  for (int s = 0; s < p.num_segments; ++s) {
    const Segment g = segment(p, s);
    for (int hk = 0; hk < p.num_kv_heads; ++hk)
      for (int64_t i0 = 0; i0 < g.lq; i0 += BQ) {
        const int64_t n = std::min<int64_t>(BQ, g.lq - i0);
        items.push_back({s, hk, i0, n, G * n * (g.lk + 1)});
      }
  }
  return items;
}

template <typename T>
void fwd_typed(const VarlenAttentionFwdParams& p) {
  const int G = p.num_heads / p.num_kv_heads;
  std::vector<WorkItem> items = query_items(p, rows_per_block(G));
  run_work(items, [&] { return Tiles(p.head_dim, G, /*backward=*/false); },
           [&](const WorkItem& it, Tiles& t) { fwd_item<T>(p, it, t); });
}

// ---- backward ----

// Query block rows of the G heads: scaled q and grad_out (M, Dp) with zero padding, lse (+inf for
// rows that saw no key, so that exp(s - lse) = 0) and delta.
template <typename T>
void pack_query_block(const VarlenAttentionBwdParams& p, const Segment& g, int hk, int64_t i0,
                      int64_t nq, const float* delta, Tiles& t) {
  const int G = p.num_heads / p.num_kv_heads, D = t.D, Dp = t.Dp;
  const Rows<T> q{static_cast<const T*>(p.q), p.q_row_stride, p.q_head_stride};
  const Rows<T> go{static_cast<const T*>(p.grad_out), p.grad_out_row_stride, p.grad_out_head_stride};
  for (int hh = 0; hh < G; ++hh) {
    const int h = hk * G + hh;
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t r = hh * nq + i, row = g.q0 + i0 + i;
      load_row(q.at(row, h), D, p.softmax_scale, &t.q[r * Dp]);
      load_row(go.at(row, h), D, 1.f, &t.dout[r * Dp]);
      const float lse = p.lse[h * p.total_q + row];
      t.m[r] = lse == kNegInf ? std::numeric_limits<float>::infinity() : lse;
      t.l[r] = delta[h * p.total_q + row];
    }
  }
}

// P = exp(S - lse) (masked) into t.s and dS = P * (dP - delta) into t.dp, for M rows x nkp keys.
void probs_and_dscores(const SegmentMask& mask, Visibility vis, int64_t i0, int64_t nq, int64_t j0,
                       int64_t nk, int64_t nkp, int M, int D, Tiles& t) {
  float* s = t.s.data();
  float* dp = t.dp.data();
  gemm<false>(M, static_cast<int>(nkp), D, t.q.data(), t.Dp, t.kt.data(), nkp, s, nkp);
  gemm<false>(M, static_cast<int>(nkp), D, t.dout.data(), t.Dp, t.vt.data(), nkp, dp, nkp);
  if (vis == Visibility::kPartial) mask.fill(i0, nq, j0, nk, nkp, t.mask.data());
  for (int r = 0; r < M; ++r) {
    float* sr = s + r * nkp;
    float* dr = dp + r * nkp;
    if (vis == Visibility::kPartial) add_row(sr, &t.mask[(r % nq) * nkp], nkp);
    const fVec lse(t.m[r]), delta(t.l[r]);
    for (int64_t j = 0; j < nkp; j += kVec) {
      const fVec pr = (fVec::loadu(sr + j) - lse).exp_u20();
      pr.store(sr + j);
      (pr * (fVec::loadu(dr + j) - delta)).store(dr + j);
    }
  }
}

// dK and dV of key tile [j0, j0 + nk) of KV head hk, summing over the group's query heads and blocks
// in order. With dq (the fused pass), also adds dS K to the dQ accumulators of each query block
// (dq + block * G * BQ * Dp), in the same order the dQ pass would: the bits do not depend on the pass.
template <typename T>
void key_tile(const VarlenAttentionBwdParams& p, const Segment& g, int hk, int64_t j0, int64_t nk,
              const float* delta, Tiles& t, float* dq) {
  const int G = p.num_heads / p.num_kv_heads, D = t.D, Dp = t.Dp, Hk = p.num_kv_heads;
  const SegmentMask mask{p.mask, g};
  const int64_t nkp = round_up(nk, kVec);
  const Rows<T> k{static_cast<const T*>(p.k), p.k_row_stride, p.k_head_stride};
  const Rows<T> v{static_cast<const T*>(p.v), p.v_row_stride, p.v_head_stride};
  bool packed = false;
  std::fill_n(t.dk.begin(), size_t(nk) * Dp, 0.f);
  std::fill_n(t.dv.begin(), size_t(nk) * Dp, 0.f);

  for (int64_t i0 = 0; i0 < g.lq; i0 += t.BQ) {
    const int64_t nq = std::min<int64_t>(t.BQ, g.lq - i0);
    Visibility vis = mask.block(i0, nq, j0, nk, mask.query_frames(i0, nq));
    if (vis == Visibility::kNone) continue;
    if (nk != nkp) vis = Visibility::kPartial;
    if (!packed) {  // K^T and V^T (and K for dQ) of the tile, once per tile
      pack_transposed(k, g.k0 + j0, hk, nk, nkp, t, t.kt.data());
      pack_transposed(v, g.k0 + j0, hk, nk, nkp, t, t.vt.data());
      if (dq)
        for (int64_t j = 0; j < nk; ++j) load_row(k.at(g.k0 + j0 + j, hk), D, 1.f, &t.k[j * Dp]);
      packed = true;
    }
    const int M = static_cast<int>(G * nq);
    pack_query_block<T>(p, g, hk, i0, nq, delta, t);
    probs_and_dscores(mask, vis, i0, nq, j0, nk, nkp, M, D, t);
    // dV += P^T dO and dK += dS^T (scale q), reading P and dS transposed in place.
    gemm<true, true>(static_cast<int>(nk), Dp, M, t.s.data(), nkp, t.dout.data(), Dp, t.dv.data(), Dp);
    gemm<true, true>(static_cast<int>(nk), Dp, M, t.dp.data(), nkp, t.q.data(), Dp, t.dk.data(), Dp);
    if (dq)
      gemm<true>(M, Dp, static_cast<int>(nk), t.dp.data(), nkp, t.k.data(), Dp,
                 dq + (i0 / t.BQ) * int64_t(t.M) * Dp, Dp);
  }
  for (int64_t j = 0; j < nk; ++j) {
    const int64_t row = g.k0 + j0 + j;
    store_row(&t.dk[j * Dp], D, 1.f, static_cast<T*>(p.grad_k) + (row * Hk + hk) * D);
    store_row(&t.dv[j * Dp], D, 1.f, static_cast<T*>(p.grad_v) + (row * Hk + hk) * D);
  }
}

// Writes dQ (scaled) of query block [i0, i0 + nq) from its accumulators (G * nq, Dp).
template <typename T>
void store_dq(const VarlenAttentionBwdParams& p, const Segment& g, int hk, int64_t i0, int64_t nq,
              const float* acc, const Tiles& t) {
  const int G = p.num_heads / p.num_kv_heads, H = p.num_heads;
  for (int hh = 0; hh < G; ++hh) {
    const int h = hk * G + hh;
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t row = g.q0 + i0 + i;
      store_row(&acc[(hh * nq + i) * t.Dp], t.D, p.softmax_scale,
                static_cast<T*>(p.grad_q) + (row * H + h) * t.D);
    }
  }
}

// The fused backward of one (segment, KV head): FlashAttention-2's five tile products per visible
// pair, dQ accumulated privately for the whole segment (no atomics).
template <typename T>
void fused_item(const VarlenAttentionBwdParams& p, const WorkItem& it, const float* delta, Tiles& t) {
  const Segment g = segment(p, it.s);
  const int64_t blocks = (g.lq + t.BQ - 1) / t.BQ;
  t.dq.assign(size_t(blocks) * t.M * t.Dp, 0.f);
  for (int64_t j0 = 0; j0 < g.lk; j0 += kBK)
    key_tile<T>(p, g, it.hk, j0, std::min<int64_t>(kBK, g.lk - j0), delta, t, t.dq.data());
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * t.BQ;
    store_dq<T>(p, g, it.hk, i0, std::min<int64_t>(t.BQ, g.lq - i0), &t.dq[b * t.M * t.Dp], t);
  }
}

template <typename T>
void dq_item(const VarlenAttentionBwdParams& p, const WorkItem& it, const float* delta, Tiles& t) {
  const int G = p.num_heads / p.num_kv_heads, D = t.D, Dp = t.Dp;
  const Segment g = segment(p, it.s);
  const SegmentMask mask{p.mask, g};
  const int64_t i0 = it.r0, nq = it.n;
  const int M = static_cast<int>(G * nq);
  const Rows<T> k{static_cast<const T*>(p.k), p.k_row_stride, p.k_head_stride};
  const Rows<T> v{static_cast<const T*>(p.v), p.v_row_stride, p.v_head_stride};
  pack_query_block<T>(p, g, it.hk, i0, nq, delta, t);
  std::fill_n(t.acc.begin(), size_t(M) * Dp, 0.f);
  const auto fq = mask.query_frames(i0, nq);

  for (int64_t j0 = 0; j0 < g.lk; j0 += kBK) {
    const int64_t nk = std::min<int64_t>(kBK, g.lk - j0), nkp = round_up(nk, kVec);
    Visibility vis = mask.block(i0, nq, j0, nk, fq);
    if (vis == Visibility::kNone) continue;
    if (nk != nkp) vis = Visibility::kPartial;
    pack_transposed(k, g.k0 + j0, it.hk, nk, nkp, t, t.kt.data());
    pack_transposed(v, g.k0 + j0, it.hk, nk, nkp, t, t.vt.data());
    for (int64_t j = 0; j < nk; ++j) load_row(k.at(g.k0 + j0 + j, it.hk), D, 1.f, &t.k[j * Dp]);
    probs_and_dscores(mask, vis, i0, nq, j0, nk, nkp, M, D, t);
    gemm<true>(M, Dp, static_cast<int>(nk), t.dp.data(), nkp, t.k.data(), Dp, t.acc.data(), Dp);
  }
  store_dq<T>(p, g, it.hk, i0, nq, t.acc.data(), t);
}

template <typename T>
void bwd_typed(const VarlenAttentionBwdParams& p) {
  const int H = p.num_heads, G = p.num_heads / p.num_kv_heads, D = p.head_dim;
  float* delta = p.workspace;  // (H, total_q): rowsum(dO * O)
  const Rows<T> go{static_cast<const T*>(p.grad_out), p.grad_out_row_stride, p.grad_out_head_stride};
  at::parallel_for(0, p.total_q, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> a(round_up(D, kVec)), b(round_up(D, kVec));
    for (int64_t row = begin; row < end; ++row)
      for (int h = 0; h < H; ++h) {
        load_row(go.at(row, h), D, 1.f, a.data());
        load_row(static_cast<const T*>(p.out) + (row * H + h) * D, D, 1.f, b.data());
        float acc = 0.f;
        for (int d = 0; d < D; ++d) acc += a[d] * b[d];
        delta[h * p.total_q + row] = acc;
      }
  });

  const int BQ = rows_per_block(G);
  auto make_tiles = [&] { return Tiles(D, G, /*backward=*/true); };
  std::vector<WorkItem> fused;
  for (int s = 0; s < p.num_segments; ++s) {
    const Segment g = segment(p, s);
    for (int hk = 0; hk < p.num_kv_heads; ++hk)
      if (g.lq > 0 && g.lk > 0) fused.push_back({s, hk, 0, g.lk, G * g.lq * g.lk});
  }
  // Zero-length segments have no item: their (empty or all-zero) gradient rows are written here.
  for (int s = 0; s < p.num_segments; ++s) {
    const Segment g = segment(p, s);
    if (g.lk == 0)
      std::fill_n(static_cast<T*>(p.grad_q) + g.q0 * H * D, g.lq * H * D, T(0));
    if (g.lq == 0) {
      std::fill_n(static_cast<T*>(p.grad_k) + g.k0 * p.num_kv_heads * D, g.lk * p.num_kv_heads * D, T(0));
      std::fill_n(static_cast<T*>(p.grad_v) + g.k0 * p.num_kv_heads * D, g.lk * p.num_kv_heads * D, T(0));
    }
  }
  // One item per (segment, KV head) does 5 tile products per pair instead of 7, but may not spread
  // over the threads: use it when the largest-first schedule of those items is within 30% of a
  // perfect split (the saving is 40%). Both ways give the same bits.
  if (balanced(fused, at::get_num_threads(), 1.3)) {
    run_work(fused, make_tiles, [&](const WorkItem& it, Tiles& t) { fused_item<T>(p, it, delta, t); });
    return;
  }
  std::vector<WorkItem> key_items;
  for (const WorkItem& f : fused)
    for (int64_t j0 = 0; j0 < f.n; j0 += kBK) {
      const int64_t n = std::min<int64_t>(kBK, f.n - j0);
      key_items.push_back({f.s, f.hk, j0, n, f.cost / f.n * n});
    }
  run_work(key_items, make_tiles, [&](const WorkItem& it, Tiles& t) {
    key_tile<T>(p, segment(p, it.s), it.hk, it.r0, it.n, delta, t, nullptr);
  });
  std::vector<WorkItem> q_items = query_items(p, BQ);
  run_work(q_items, make_tiles, [&](const WorkItem& it, Tiles& t) { dq_item<T>(p, it, delta, t); });
}

void fwd(const VarlenAttentionFwdParams& p) {
  switch (p.dtype) {
    case ElemType::kFloat32: return fwd_typed<float>(p);
    case ElemType::kBFloat16: return fwd_typed<c10::BFloat16>(p);
    case ElemType::kFloat16: return fwd_typed<c10::Half>(p);
  }
}

void bwd(const VarlenAttentionBwdParams& p) {
  switch (p.dtype) {
    case ElemType::kFloat32: return bwd_typed<float>(p);
    case ElemType::kBFloat16: return bwd_typed<c10::BFloat16>(p);
    case ElemType::kFloat16: return bwd_typed<c10::Half>(p);
  }
}

}  // namespace
}  // namespace CPU_CAPABILITY

#define LF_CONCAT_(a, b) a##b
#define LF_CONCAT(a, b) LF_CONCAT_(a, b)
extern const AttentionCpuKernels LF_CONCAT(kAttentionCpuKernels_, CPU_CAPABILITY) = {
    &CPU_CAPABILITY::fwd, &CPU_CAPABILITY::bwd};

}  // namespace lavin_fast::cpu
