// CPU kernels of varlen attention: tiled online-softmax attention with fp32 compute for fp32, bf16 and
// fp16 inputs, and a FlashAttention-2-style backward that recomputes P from the saved lse.
//
// Work items are (segment, KV head, block of rows). The G = H / H_kv query heads that share a KV head
// are stacked into one block of G * BQ query rows, so every K/V tile is reused by the whole group. Key
// tiles that the masks hide entirely are skipped before any compute; element masking runs only on
// partially visible tiles. The tile products are register-blocked GEMMs (attention_cpu_gemm.h),
// oriented so that head_dim is a row count (never padded to the vector width) wherever possible;
// the softmax uses a short exp2 (attention_cpu_exp.h) of (score - reference) * log2(e).
//
// Sharp softmax (fp32 scores near 1e4, where one ulp is 1e-3): the backward recomputes every score
// S = (scale Q) K^T bit for bit as the forward did (the same scaled Q rows, the same FMA chain over
// head_dim, only the operand order of the products differs), in natural units, and takes
// P = exp((S - lse) - lse_residual) with the forward's log-sum-exp as an fp32 pair (the residual holds
// what lse's rounding drops). S - lse is then exact near the row's maximum, so P is as accurate as
// PyTorch's exp(S - max) / sum. Folding log2(e) into the scale, converting lse between units and
// recomputing S in another rounding (the earlier design) left P off by 1e-2 there.
//
// Backward: when the (segment, KV head) items spread well over the threads, one fused pass per item
// (FlashAttention-2's five products, dQ accumulated privately); otherwise dK/dV per (segment, KV head,
// key tile) summing over the group's query heads and blocks in a fixed order, then dQ per (segment,
// KV head, query block) in a second pass that recomputes P and dP (no atomics, no S^2 scratch). Both
// add the same terms in the same order, so every gradient is bitwise independent of the thread count.
//
// Compiled once per instruction set with CPU_CAPABILITY = DEFAULT / AVX2 / AVX512.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "attention/attention_cpu.h"
#include "attention/attention_cpu_exp.h"
#include "attention/attention_cpu_gemm.h"
#include "attention/attention_cpu_tiles.h"
#include "common/cpu_isa.h"
#include "common/cpu_vec.h"
#include "common/transpose_cpu.h"

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

inline void add_row(float* x, const float* y, int64_t n) {
  for (int64_t j = 0; j < n; j += kVec) (fVec::loadu(x + j) + fVec::loadu(y + j)).store(x + j);
}

// x = -inf where the additive mask y (0 / -inf) hides the key. A select, not x + y: a NaN or inf score
// of a hidden key must not reach the row (the reference masks by replacement too).
inline void mask_row(float* x, const float* y, int64_t n) {
  const fVec neg_inf(kNegInf);
  for (int64_t j = 0; j < n; j += kVec) {
    const fVec m = fVec::loadu(y + j);
    fVec::blendv(fVec::loadu(x + j), neg_inf, m != fVec(0.f)).store(x + j);
  }
}

// Rows of a (row, head)-strided tensor.
template <typename T>
struct Rows {
  const T* base;
  int64_t row_stride, head_stride;
  const T* at(int64_t row, int64_t head) const { return base + row * row_stride + head * head_stride; }
};

// ---- forward ----
//
// Transposed: the query axis is the vector axis of both products, S^T (keys x M) = K Q^T and
// O^T (D x M) += V^T P^T, so head_dim (72 in LaVin-DiT) never has to be padded to the vector width,
// K and V are read in place as the broadcast operands (no per-tile packing), and the softmax's row
// maxima and sums are element-wise over key rows instead of horizontal reductions. Scores are in
// natural units; exponentials are exp2((s - max) * log2(e)), the difference taken first so that it
// is exact where it matters (s near max).

constexpr float kLog2e = 1.4426950408889634f;

struct FwdTiles {
  int D, Dr, Mp;  // Dr = D rounded up to the vector width (rows of the transposes)
  std::vector<float> qt;     // (Dr, Mp)  softmax_scale Q^T of the G heads, columns head-major, padding zero
  std::vector<float> ot;     // (Dr, Mp)  O^T accumulator (rows D.. unused)
  std::vector<float> rows;   // (Mp, Dr)  Q rows before, O rows after the transposes
  std::vector<float> st;     // (kBK, Mp) S^T, then P^T
  std::vector<float> mask;   // (kBK, BQ) additive 0 / -inf, transposed
  std::vector<float> m, l;   // (Mp,) running max and sum
  std::vector<float> alpha;  // (Mp,) rescale of O^T for the current key tile
  std::vector<float> kbuf, vbuf;  // (lk, D) K and V of segment / KV head kv_of (bf16 / fp16 only)
  std::pair<int, int> kv_of{-1, -1};

  FwdTiles(int d, int group)
      : D(d), Dr(static_cast<int>(round_up(d, kVec))),
        Mp(static_cast<int>(round_up(int64_t(group) * rows_per_block(group), kVec))) {
    qt.assign(size_t(Dr) * Mp, 0.f);
    ot.assign(size_t(Dr) * Mp, 0.f);
    rows.assign(size_t(Mp) * Dr, 0.f);
    st.assign(size_t(kBK) * Mp, 0.f);
    mask.assign(size_t(kBK) * rows_per_block(group), 0.f);
    m.assign(Mp, 0.f);
    l.assign(Mp, 0.f);
    alpha.assign(Mp, 0.f);
  }
};

// K and V rows [g.k0, g.k0 + g.lk) of KV head hk as fp32: in place for fp32; for bf16/fp16 converted
// into the tiles, once per (segment, KV head) a thread works on in a row.
template <typename T>
std::pair<Rows<float>, Rows<float>> float_kv(const VarlenAttentionFwdParams& p, const Segment& g, int hk,
                                             FwdTiles& t) {
  if constexpr (std::is_same_v<T, float>) {
    return {{static_cast<const float*>(p.k) + g.k0 * p.k_row_stride + hk * p.k_head_stride, p.k_row_stride, 0},
            {static_cast<const float*>(p.v) + g.k0 * p.v_row_stride + hk * p.v_head_stride, p.v_row_stride, 0}};
  } else {
    const int D = t.D;
    if (t.kv_of != std::make_pair(g.s, hk)) {
      const Rows<T> k{static_cast<const T*>(p.k), p.k_row_stride, p.k_head_stride};
      const Rows<T> v{static_cast<const T*>(p.v), p.v_row_stride, p.v_head_stride};
      t.kbuf.resize(size_t(g.lk) * D);
      t.vbuf.resize(size_t(g.lk) * D);
      for (int64_t j = 0; j < g.lk; ++j) {
        load_row(k.at(g.k0 + j, hk), D, 1.f, &t.kbuf[j * D]);
        load_row(v.at(g.k0 + j, hk), D, 1.f, &t.vbuf[j * D]);
      }
      t.kv_of = {g.s, hk};
    }
    return {{t.kbuf.data(), D, 0}, {t.vbuf.data(), D, 0}};
  }
}

// Online softmax of NV vectors of query columns of S^T (nk rows, row stride ld), starting at column c
// of the running max / sum: P^T = exp(S^T - max) in place, t.alpha = exp(old max - new max), the
// factor the accumulated O^T columns take. NV independent chains per pass hide the max/add latency.
// A column that has seen nothing yet (max -inf) uses 0 as its max, so P = exp2(-inf) = 0 and alpha = 0.
template <int NV>
inline void softmax_columns(float* st, int64_t ld, int nk, FwdTiles& t, int c) {
  fVec mx[NV], mu[NV], sum[NV];
  for (int v = 0; v < NV; ++v) mx[v] = fVec::loadu(&t.m[c + v * kVec]);
  for (int j = 0; j < nk; ++j)
    for (int v = 0; v < NV; ++v) mx[v] = at::vec::maximum(mx[v], fVec::loadu(st + j * ld + v * kVec));
  for (int v = 0; v < NV; ++v) {
    mu[v] = fVec::blendv(mx[v], fVec(0.f), mx[v] == fVec(kNegInf));
    sum[v] = fVec(0.f);
  }
  const fVec log2e(kLog2e);
  for (int j = 0; j < nk; ++j)
    for (int v = 0; v < NV; ++v) {
      const fVec e = fast_exp2((fVec::loadu(st + j * ld + v * kVec) - mu[v]) * log2e);
      e.store(st + j * ld + v * kVec);
      sum[v] = sum[v] + e;
    }
  for (int v = 0; v < NV; ++v) {
    const int cv = c + v * kVec;
    const fVec alpha = fast_exp2((fVec::loadu(&t.m[cv]) - mu[v]) * log2e);
    (fVec::loadu(&t.l[cv]) * alpha + sum[v]).store(&t.l[cv]);
    alpha.store(&t.alpha[cv]);
    mx[v].store(&t.m[cv]);
  }
}

template <typename T>
void fwd_item(const VarlenAttentionFwdParams& p, const WorkItem& it, FwdTiles& t) {
  const int G = p.num_heads / p.num_kv_heads, D = t.D;
  const Segment g = segment(p, it.s);
  const SegmentMask mask{p.mask, g};
  const int64_t i0 = it.r0, nq = it.n;
  const int M = static_cast<int>(G * nq), Mp = static_cast<int>(round_up(M, kVec));
  const Rows<T> q{static_cast<const T*>(p.q), p.q_row_stride, p.q_head_stride};

  // Q^T: rows (zero-padded to Dr columns, Mp rows) transposed in registers.
  const int Dr = t.Dr;
  float* qt = t.qt.data();
  float* rows = t.rows.data();
  for (int hh = 0; hh < G; ++hh)
    for (int64_t i = 0; i < nq; ++i) {
      float* r = rows + (hh * nq + i) * Dr;
      load_row(q.at(g.q0 + i0 + i, it.hk * G + hh), D, p.softmax_scale, r);
      std::fill(r + D, r + Dr, 0.f);
    }
  std::fill(rows + int64_t(M) * Dr, rows + int64_t(Mp) * Dr, 0.f);
  transpose(rows, Dr, Mp, Dr, qt, Mp);
  std::fill_n(t.ot.begin(), size_t(Dr) * Mp, 0.f);
  std::fill_n(t.m.begin(), Mp, kNegInf);
  std::fill_n(t.l.begin(), Mp, 0.f);
  const auto fq = mask.query_frames(i0, nq);
  float* st = t.st.data();
  const auto [kr, vr] = float_kv<T>(p, g, it.hk, t);  // rows relative to the segment start

  for (int64_t j0 = 0; j0 < g.lk; j0 += kBK) {
    const int nk = static_cast<int>(std::min<int64_t>(kBK, g.lk - j0));
    const Visibility vis = mask.block(i0, nq, j0, nk, fq);
    if (vis == Visibility::kNone) continue;
    gemm<false>(nk, Mp, D, kr.at(j0, 0), kr.row_stride, qt, Mp, st, Mp);
    if (vis == Visibility::kPartial) {
      mask.fill_transposed(i0, nq, j0, nk, t.mask.data());
      for (int j = 0; j < nk; ++j)
        for (int hh = 0; hh < G; ++hh)
          for (int64_t i = 0; i < nq; ++i)
            if (t.mask[j * nq + i] != 0.f) st[j * Mp + hh * nq + i] = kNegInf;
    }
    int c = 0;
    for (; c + 8 * kVec <= Mp; c += 8 * kVec) softmax_columns<8>(st + c, Mp, nk, t, c);
    for (; c < Mp; c += kVec) softmax_columns<1>(st + c, Mp, nk, t, c);
    gemm<true, true>(D, Mp, nk, vr.at(j0, 0), vr.row_stride, st, Mp, t.ot.data(), Mp, t.alpha.data());
  }

  const int H = p.num_heads;
  transpose(t.ot.data(), Mp, Dr, Mp, rows, Dr);
  for (int hh = 0; hh < G; ++hh) {
    const int h = it.hk * G + hh;
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t c = hh * nq + i, row = g.q0 + i0 + i;
      // l == 0: the row saw no key. NaN (a NaN score) is not "unseen": it propagates to out and lse.
      const bool seen = t.l[c] != 0.f;
      store_row(rows + c * Dr, D, seen ? 1.f / t.l[c] : 0.f, static_cast<T*>(p.out) + (row * H + h) * D);
      // log-sum-exp in double, stored as fp32 lse + residual (two-float sum; attention_params.h).
      const double lse = seen ? double(t.m[c]) + std::log(double(t.l[c])) : -INFINITY;
      const float hi = static_cast<float>(lse);
      p.lse[h * p.total_q + row] = hi;
      p.lse_residual[h * p.total_q + row] = seen ? static_cast<float>(lse - double(hi)) : 0.f;
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
  run_work(items, [&] { return FwdTiles(p.head_dim, G); },
           [&](const WorkItem& it, FwdTiles& t) { fwd_item<T>(p, it, t); });
}

// ---- backward ----

//
// Per (key tile, query block) pair, with M = G * nq stacked query rows and the key axis as the vector
// axis: S = (sQ) K^T and dP = dO V^T (M x nkp), P = exp2((S - lse) log2(e)), dS = P (dP - delta);
// then dV^T += dO^T P and dK^T += (sQ)^T dS (D x nkp: head_dim is the row count, never padded; sQ and
// dO are read transposed in place) and dQ += dS K (M x Dp), s = softmax_scale. The packed query rows
// are sQ exactly as the forward rounded them, so S is the forward's S bit for bit; dK = (sQ)^T dS
// needs no further scale, dQ takes s when stored.

// Key tiles per backward chunk: each pass over a segment's query rows (q, grad_out and the dQ
// accumulators, megabytes for long segments) serves this many key tiles, so that stream comes from L3
// a quarter as often; the chunk's own tiles and accumulators (~0.5 MB at D = 72) stay in L2.
constexpr int kKeyChunk = 4;

struct BwdTiles {
  int D, Dp, BQ, M, Mv;  // Mv = M rounded up to the vector width
  // Query rows of a whole segment (fused item) or one block: block b at rows b * M, head-major inside.
  // One query block, packed again for every key chunk that sees it (~0.3% of the block's products):
  // a thread's scratch is then independent of the segment's length, and so the total is independent
  // of the thread count (whole-segment copies per thread made 16k tokens take 528 MiB on 8 threads).
  std::vector<float> q, dout;     // (M, D) softmax_scale * q, grad_out
  std::vector<float> lse, lse_residual, delta;  // (M,) lse (+inf: the row saw nothing, so P = 0), its
                                                // residual, rowsum(dO * O)
  std::vector<float> dq;           // per block (D, Mv): dQ^T accumulators of the blocks of one item
  std::vector<float> s, dp;        // (Mv, kBK) S then P; dP then dS
  std::vector<float> dst;          // (kBK, Mv) dS^T
  // Per key tile of a chunk (kKeyChunk slots):
  std::vector<float> kt, vt;       // (D, kBK) K^T, V^T, padding columns zero
  std::vector<float> kr;           // (kBK, Dp) K
  std::vector<float> dkt, dvt;     // (D, kBK) dK^T, dV^T
  std::vector<float> mask;         // (BQ, kBK) additive 0 / -inf
  std::vector<float> row;          // (Dp,) scratch
  std::vector<float> part;         // (D, max(kBK, Mv)) one product's term before it joins its sum

  BwdTiles(int d, int group)
      : D(d), Dp(static_cast<int>(round_up(d, kVec))), BQ(rows_per_block(group)), M(group * BQ),
        Mv(static_cast<int>(round_up(M, kVec))) {
    q.assign(size_t(M) * D, 0.f);
    dout.assign(size_t(M) * D, 0.f);
    lse.assign(M, 0.f);
    lse_residual.assign(M, 0.f);
    delta.assign(M, 0.f);
    s.assign(size_t(Mv) * kBK, 0.f);
    dp.assign(size_t(Mv) * kBK, 0.f);
    dst.assign(size_t(kBK) * Mv, 0.f);
    kt.assign(size_t(kKeyChunk) * D * kBK, 0.f);
    vt.assign(size_t(kKeyChunk) * D * kBK, 0.f);
    kr.assign(size_t(kKeyChunk) * kBK * Dp, 0.f);
    dkt.assign(size_t(kKeyChunk) * D * kBK, 0.f);
    dvt.assign(size_t(kKeyChunk) * D * kBK, 0.f);
    mask.assign(size_t(BQ) * kBK, 0.f);
    row.assign(Dp, 0.f);
    part.assign(size_t(D) * std::max(kBK, Mv), 0.f);
  }
};

// Packs query rows [i0, i0 + nq) of the G heads of KV head hk into the tiles' query block.
template <typename T>
void pack_query_block(const VarlenAttentionBwdParams& p, const Segment& g, int hk, int64_t i0, int64_t nq,
                      const float* delta, BwdTiles& t) {
  const int G = p.num_heads / p.num_kv_heads, D = t.D;
  const Rows<T> q{static_cast<const T*>(p.q), p.q_row_stride, p.q_head_stride};
  const Rows<T> go{static_cast<const T*>(p.grad_out), p.grad_out_row_stride, p.grad_out_head_stride};
  for (int hh = 0; hh < G; ++hh) {
    const int h = hk * G + hh;
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t r = hh * nq + i, row = g.q0 + i0 + i;
      load_row(q.at(row, h), D, p.softmax_scale, &t.q[r * D]);  // as fwd_item rounds it
      load_row(go.at(row, h), D, 1.f, &t.dout[r * D]);
      const float lse = p.lse[h * p.total_q + row];
      t.lse[r] = lse == kNegInf ? std::numeric_limits<float>::infinity() : lse;
      t.lse_residual[r] = p.lse_residual ? p.lse_residual[h * p.total_q + row] : 0.f;
      t.delta[r] = delta[h * p.total_q + row];
    }
  }
}


// K^T and V^T (D, nkp) with zero padding columns, and K (nk, Dp), of key rows [j0, j0 + nk).
template <typename T>
void pack_key_tile(const VarlenAttentionBwdParams& p, const Segment& g, int hk, int64_t j0, int64_t nk,
                   int slot, BwdTiles& t) {
  const int D = t.D, Dp = t.Dp;
  float* kt = &t.kt[size_t(slot) * D * kBK];
  float* vt = &t.vt[size_t(slot) * D * kBK];
  float* kr = &t.kr[size_t(slot) * kBK * Dp];
  const int64_t nkp = round_up(nk, kVec);
  const Rows<T> k{static_cast<const T*>(p.k), p.k_row_stride, p.k_head_stride};
  const Rows<T> v{static_cast<const T*>(p.v), p.v_row_stride, p.v_head_stride};
  float* tmp = t.row.data();
  for (int64_t j = 0; j < nk; ++j) {
    load_row(k.at(g.k0 + j0 + j, hk), D, 1.f, &kr[j * Dp]);
    for (int d = 0; d < D; ++d) kt[d * nkp + j] = kr[j * Dp + d];
    load_row(v.at(g.k0 + j0 + j, hk), D, 1.f, tmp);
    for (int d = 0; d < D; ++d) vt[d * nkp + j] = tmp[d];
  }
  for (int d = 0; d < D; ++d)
    for (int64_t j = nk; j < nkp; ++j) kt[d * nkp + j] = vt[d * nkp + j] = 0.f;
}

constexpr int kRowChunk = 48;  // a multiple of the GEMM's 6-row blocks; S and dP chunks: 2 x 12 KB

// P into t.s and dS into t.dp for the packed query block (t.q, t.dout, ...: M rows) against the
// packed key tile. Padding key columns (nk..nkp) get garbage that no product reads: the dK^T / dV^T
// columns they feed are not stored and dQ's reduction stops at nk.
void probs_and_dscores(const SegmentMask& mask, Visibility vis, int64_t i0, int64_t nq, int64_t j0,
                       int64_t nk, int64_t nkp, int M, int slot, BwdTiles& t) {
  float* s = t.s.data();
  float* dp = t.dp.data();
  const float* q = t.q.data();
  const float* dout = t.dout.data();
  const int D = t.D;
  if (vis == Visibility::kPartial) mask.fill(i0, nq, j0, nk, nkp, t.mask.data());
  // In chunks of rows so that S and dP are still in L1 when the element-wise pass reads them.
  for (int r0 = 0; r0 < M; r0 += kRowChunk) {
    const int mr = std::min(kRowChunk, M - r0);
    gemm<false>(mr, static_cast<int>(nkp), D, q + r0 * D, D, &t.kt[size_t(slot) * D * kBK], nkp, s + r0 * nkp, nkp);
    gemm<false>(mr, static_cast<int>(nkp), D, dout + r0 * D, D, &t.vt[size_t(slot) * D * kBK], nkp,
                dp + r0 * nkp, nkp);
    for (int r = r0; r < r0 + mr; ++r) {
      float* sr = s + r * nkp;
      float* dr = dp + r * nkp;
      if (vis == Visibility::kPartial) mask_row(sr, &t.mask[(r % nq) * nkp], nkp);
      const fVec l(t.lse[r]), lr(t.lse_residual[r]), dl(t.delta[r]), log2e(kLog2e);
      for (int64_t j = 0; j < nkp; j += kVec) {
        const fVec pr = fast_exp2(((fVec::loadu(sr + j) - l) - lr) * log2e);
        pr.store(sr + j);
        (pr * (fVec::loadu(dr + j) - dl)).store(dr + j);
      }
    }
  }
}

// C (rows x N, row stride ldc) += A^T B (gemm<.., kTransA> shapes), the product formed from zero in
// t.part and then added: each gradient element is a sum of per-tile / per-block terms, each term an
// FMA chain of at most 128, instead of one chain through the whole segment (800 terms for 200 queries
// of a 4-head group), whose fp32 error was 3x PyTorch's blocked GEMMs' on long segments.
inline void accumulate_product(int rows, int N, int K, const float* A, int64_t lda, const float* B,
                               int64_t ldb, float* C, int64_t ldc, BwdTiles& t) {
  float* part = t.part.data();
  gemm<false, true>(rows, N, K, A, lda, B, ldb, part, N);
  for (int r = 0; r < rows; ++r) add_row(C + r * ldc, part + r * N, N);
}

// dQ^T (D, Mv) += K^T dS^T for the M x nk block of dS in t.dp (row stride nkp), kr = K (nk, Dp): the
// transposed product keeps head_dim a row count (no padding of 72 to 80, 6 x 4 register tiles) at the
// price of transposing dS in registers.
inline void add_dq(int M, int64_t nk, int64_t nkp, const float* kr, float* dqt, BwdTiles& t) {
  const int Mr = static_cast<int>(round_up(M, kVec));
  transpose(t.dp.data(), nkp, Mr, static_cast<int>(nkp), t.dst.data(), t.Mv);
  accumulate_product(t.D, Mr, static_cast<int>(nk), kr, t.Dp, t.dst.data(), t.Mv, dqt, t.Mv, t);
}

// dK and dV of the key tiles of keys [j0, j0 + nkeys) (at most kKeyChunk tiles) of KV head hk, each
// summing over the group's query heads and the query blocks in order. With kDq, also adds dS K of
// each tile, in key order, to each block's dQ accumulators in t.dq (the whole segment's), the order
// dq_item uses: the bits depend neither on the pass nor on the chunking.
template <typename T, bool kDq>
void key_chunk(const VarlenAttentionBwdParams& p, const Segment& g, int hk, int64_t j0, int64_t nkeys,
               const float* delta, BwdTiles& t) {
  const int G = p.num_heads / p.num_kv_heads, D = t.D, Dp = t.Dp, Hk = p.num_kv_heads;
  const SegmentMask mask{p.mask, g};
  const int ntiles = static_cast<int>((nkeys + kBK - 1) / kBK);
  bool packed[kKeyChunk] = {};
  std::fill_n(t.dkt.begin(), size_t(ntiles) * D * kBK, 0.f);
  std::fill_n(t.dvt.begin(), size_t(ntiles) * D * kBK, 0.f);

  for (int64_t i0 = 0, b = 0; i0 < g.lq; i0 += t.BQ, ++b) {
    const int64_t nq = std::min<int64_t>(t.BQ, g.lq - i0);
    const auto fq = mask.query_frames(i0, nq);
    const int M = static_cast<int>(G * nq);
    const float* q = t.q.data();
    const float* dout = t.dout.data();
    bool block_packed = false;
    for (int ti = 0; ti < ntiles; ++ti) {
      const int64_t jt = j0 + ti * kBK, nk = std::min<int64_t>(kBK, j0 + nkeys - jt), nkp = round_up(nk, kVec);
      const Visibility vis = mask.block(i0, nq, jt, nk, fq);
      if (vis == Visibility::kNone) continue;
      if (!block_packed) {
        pack_query_block<T>(p, g, hk, i0, nq, delta, t);
        block_packed = true;
      }
      if (!packed[ti]) {
        pack_key_tile<T>(p, g, hk, jt, nk, ti, t);
        packed[ti] = true;
      }
      probs_and_dscores(mask, vis, i0, nq, jt, nk, nkp, M, ti, t);
      float* dvt = &t.dvt[size_t(ti) * D * kBK];
      float* dkt = &t.dkt[size_t(ti) * D * kBK];
      accumulate_product(D, static_cast<int>(nkp), M, dout, D, t.s.data(), nkp, dvt, nkp, t);
      accumulate_product(D, static_cast<int>(nkp), M, q, D, t.dp.data(), nkp, dkt, nkp, t);
      if constexpr (kDq) add_dq(M, nk, nkp, &t.kr[size_t(ti) * kBK * Dp], &t.dq[b * D * t.Mv], t);
    }
  }
  float* tmp = t.row.data();
  for (int ti = 0; ti < ntiles; ++ti) {
    const int64_t jt = j0 + ti * kBK, nk = std::min<int64_t>(kBK, j0 + nkeys - jt), nkp = round_up(nk, kVec);
    const float* dkt = &t.dkt[size_t(ti) * D * kBK];
    const float* dvt = &t.dvt[size_t(ti) * D * kBK];
    for (int64_t j = 0; j < nk; ++j) {
      const int64_t row = g.k0 + jt + j;
      for (int d = 0; d < D; ++d) tmp[d] = dkt[d * nkp + j];
      store_row(tmp, D, 1.f, static_cast<T*>(p.grad_k) + (row * Hk + hk) * D);
      for (int d = 0; d < D; ++d) tmp[d] = dvt[d * nkp + j];
      store_row(tmp, D, 1.f, static_cast<T*>(p.grad_v) + (row * Hk + hk) * D);
    }
  }
}

// Writes dQ (scaled) of query block [i0, i0 + nq) from its accumulators dQ^T (D, Mv).
template <typename T>
void store_dq(const VarlenAttentionBwdParams& p, const Segment& g, int hk, int64_t i0, int64_t nq,
              const float* acc, BwdTiles& t) {
  const int G = p.num_heads / p.num_kv_heads, H = p.num_heads;
  for (int hh = 0; hh < G; ++hh) {
    const int h = hk * G + hh;
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t row = g.q0 + i0 + i, c = hh * nq + i;
      float* tmp = const_cast<float*>(t.row.data());
      for (int d = 0; d < t.D; ++d) tmp[d] = acc[d * t.Mv + c];
      store_row(tmp, t.D, p.softmax_scale, static_cast<T*>(p.grad_q) + (row * H + h) * t.D);
    }
  }
}

// The fused backward of one (segment, KV head): FlashAttention-2's five tile products per visible
// pair, dQ accumulated privately for the whole segment (no atomics).
template <typename T>
void fused_item(const VarlenAttentionBwdParams& p, const WorkItem& it, const float* delta, BwdTiles& t) {
  const Segment g = segment(p, it.s);
  const int64_t blocks = (g.lq + t.BQ - 1) / t.BQ;
  t.dq.assign(size_t(blocks) * t.D * t.Mv, 0.f);
  for (int64_t j0 = 0; j0 < g.lk; j0 += kKeyChunk * kBK)
    key_chunk<T, true>(p, g, it.hk, j0, std::min<int64_t>(kKeyChunk * kBK, g.lk - j0), delta, t);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * t.BQ;
    store_dq<T>(p, g, it.hk, i0, std::min<int64_t>(t.BQ, g.lq - i0), &t.dq[b * t.D * t.Mv], t);
  }
}

template <typename T>
void dq_item(const VarlenAttentionBwdParams& p, const WorkItem& it, const float* delta, BwdTiles& t) {
  const int G = p.num_heads / p.num_kv_heads;
  const Segment g = segment(p, it.s);
  const SegmentMask mask{p.mask, g};
  const int64_t i0 = it.r0, nq = it.n;
  const int M = static_cast<int>(G * nq);
  pack_query_block<T>(p, g, it.hk, i0, nq, delta, t);
  t.dq.assign(size_t(t.D) * t.Mv, 0.f);
  const auto fq = mask.query_frames(i0, nq);

  for (int64_t j0 = 0; j0 < g.lk; j0 += kBK) {
    const int64_t nk = std::min<int64_t>(kBK, g.lk - j0), nkp = round_up(nk, kVec);
    const Visibility vis = mask.block(i0, nq, j0, nk, fq);
    if (vis == Visibility::kNone) continue;
    pack_key_tile<T>(p, g, it.hk, j0, nk, 0, t);
    probs_and_dscores(mask, vis, i0, nq, j0, nk, nkp, M, 0, t);
    add_dq(M, nk, nkp, t.kr.data(), t.dq.data(), t);
  }
  store_dq<T>(p, g, it.hk, i0, nq, t.dq.data(), t);
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
        // The FMA chain of the dP = dO V^T product (gemm_block: acc = fmadd(a, b, acc) over head_dim
        // from zero), so for a one-hot row (out == its top key's V exactly) delta is that key's dP bit
        // for bit and dS = P (dP - delta) is exactly zero, as in PyTorch's softmax backward; any other
        // rounding leaves 1e-7 |dO||V| there, which dK multiplies by |q| (1e4 with sharp softmax).
        fVec acc(0.f);
        for (int d = 0; d < D; ++d) acc = at::vec::fmadd(fVec(a[d]), fVec(b[d]), acc);
        acc.store(&delta[h * p.total_q + row], 1);
      }
  });

  const int BQ = rows_per_block(G);
  auto make_tiles = [&] { return BwdTiles(D, G); };
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
    run_work(fused, make_tiles, [&](const WorkItem& it, BwdTiles& t) { fused_item<T>(p, it, delta, t); });
    return;
  }
  std::vector<WorkItem> key_items;
  for (const WorkItem& f : fused)
    for (int64_t j0 = 0; j0 < f.n; j0 += kBK) {
      const int64_t n = std::min<int64_t>(kBK, f.n - j0);
      key_items.push_back({f.s, f.hk, j0, n, f.cost / f.n * n});
    }
  run_work(key_items, make_tiles, [&](const WorkItem& it, BwdTiles& t) {
    key_chunk<T, false>(p, segment(p, it.s), it.hk, it.r0, it.n, delta, t);
  });
  std::vector<WorkItem> q_items = query_items(p, BQ);
  run_work(q_items, make_tiles, [&](const WorkItem& it, BwdTiles& t) { dq_item<T>(p, it, delta, t); });
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

LAVIN_FAST_DEFINE_ISA_TABLE(AttentionCpuKernels, kAttentionCpuKernels, &CPU_CAPABILITY::fwd, &CPU_CAPABILITY::bwd);

}  // namespace lavin_fast::cpu
