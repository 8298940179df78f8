// Varlen attention backward in the FlashAttention-2 style, in the portable dialect. With
// S = scale * Q K^T, P = exp(S - lse), dP = dO V^T, dS = P * (dP - delta), delta = rowsum(dO * O):
//   dV = P^T dO,  dK = scale * dS^T Q,  dQ = scale * dS K.
// Kernels:
//   attention_bwd_preprocess_kernel  delta (H, total_q) fp32 into the workspace, one warp per (row, head);
//   attention_bwd_kernel             one block of 4 warps per (key tile of 64, KV head, segment); each
//       warp owns 16 keys and keeps their dK, dV in registers while the block walks the group's query
//       heads in order and, per head, the visible query tiles (Q, dO through shared memory with
//       cp.async). GQA sums over the group therefore happen in registers, in a fixed order. dQ: with
//       `accumulate_dq` the block stages dS in shared memory and adds dS K into the fp32 workspace with
//       atomics (order-dependent rounding); without it dQ is left to
//   attention_bwd_dq_kernel          (deterministic mode) one block per (query tile, head, segment),
//       recomputing P and dS over the visible key tiles like the forward and keeping dQ in registers;
//   attention_bwd_dq_convert_kernel  (atomic mode) grad_q = scale * workspace, rounded to the dtype.
// Padding rows (queries past len_q) get lse = +inf and delta = 0 in shared memory, so P = dS = 0.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"
#include "attention/attention_plan.h"
#include "attention/attention_tile.cuh"

namespace lavin_fast::attention_kernels {

constexpr int kBwdBN = 64;  // keys per block of the main kernel (16 per warp)
// Query rows per step of the main kernel: 32 keeps S^T, dP^T (16 floats each) and dK, dV (kDP / 2
// floats each) in registers; 64 spills at D = 64 already.
template <int D>
constexpr int bwd_bm() { return 32; }
constexpr int kDqBM = 64;  // query rows per block of the dQ kernel
constexpr int kDqBN = 64;  // keys per tile of the dQ kernel
constexpr int kSPitch = kBwdBN + 8;  // dS staging rows (elements)


template <int D>
constexpr size_t bwd_smem_bytes(size_t elem_bytes) {
  constexpr int kPitch = HeadDim<D>::kPitch, BM = bwd_bm<D>();
  return (static_cast<size_t>(2 * kBwdBN + 4 * BM) * kPitch + static_cast<size_t>(BM) * kSPitch) * elem_bytes +
         2 * BM * sizeof(float);
}
template <int D>
constexpr size_t dq_smem_bytes(size_t elem_bytes) {
  return static_cast<size_t>(2 * kDqBM + 4 * kDqBN) * HeadDim<D>::kPitch * elem_bytes;
}

// ---- delta = rowsum(dO * O) ----

template <typename T>
LF_GLOBAL void LF_LAUNCH_BOUNDS(kThreads) attention_bwd_preprocess_kernel(VarlenAttentionBwdParams p) {
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarps + lf::warp_id();  // row * H + head
  const bool active = item < p.total_q * p.num_heads;
  const int64_t row = active ? item / p.num_heads : 0;
  const int h = active ? static_cast<int>(item % p.num_heads) : 0;
  float acc = 0.f;
  if (active) {
    const T* o = static_cast<const T*>(p.out) + (row * p.num_heads + h) * p.head_dim;
    const T* g = static_cast<const T*>(p.grad_out) + row * p.grad_out_row_stride + h * p.grad_out_head_stride;
    for (int d = lf::lane_id(); d < p.head_dim; d += 32) acc += lf::to_float(o[d]) * lf::to_float(g[d]);
  }
  LF_UNROLL
  for (int off = 16; off > 0; off /= 2) acc += lf::shfl_xor(lf::kFullMask, acc, off);
  if (active && lf::lane_id() == 0) p.workspace[static_cast<int64_t>(h) * p.total_q + row] = acc;
}

// ---- dK, dV (and atomic dQ) ----

// The first query tile >= from, < m_tiles, that sees part of key tile [n0, n0 + BN) (m_tiles if none).
template <int BM, int BN>
LF_DEVICE int next_visible_q(const SegMask& m, int from, int m_tiles, int n0, int& kind) {
  for (int mt = from; mt < m_tiles; ++mt) {
    kind = classify_tile<BN>(m, mt * BM, BM, n0);
    if (kind != kSkip) return mt;
  }
  return m_tiles;
}

// Q and dO rows of query tile `tile` of head `hh` into buffer b of sQ / sdO (2 x BM rows each).
template <typename T, int D, int BM>
LF_DEVICE void load_q_do_async(T* sQ, T* sdO, int b, const VarlenAttentionBwdParams& p, int q0, int len_q, int hh,
                               int tile) {
  constexpr int kPitch = HeadDim<D>::kPitch;
  const int m0 = tile * BM;
  load_tile_async<T, D, BM>(sQ + b * BM * kPitch,
                            static_cast<const T*>(p.q) + (q0 + m0) * p.q_row_stride + hh * p.q_head_stride,
                            p.q_row_stride, len_q - m0);
  load_tile_async<T, D, BM>(sdO + b * BM * kPitch,
                            static_cast<const T*>(p.grad_out) + (q0 + m0) * p.grad_out_row_stride +
                                hh * p.grad_out_head_stride,
                            p.grad_out_row_stride, len_q - m0);
}

template <typename T, int D>
LF_GLOBAL void LF_LAUNCH_BOUNDS_MIN(kThreads, kMinBlocks) attention_bwd_kernel(VarlenAttentionBwdParams p, bool accumulate_dq) {
  using H = HeadDim<D>;
  constexpr int BM = bwd_bm<D>(), BN = kBwdBN, kDP = H::kDP, kPitch = H::kPitch;
  constexpr int kKS = kDP / 16;  // k steps over the head dim
  constexpr int kQT = BM / 8;    // n8 tiles of S^T (queries)
  constexpr int kOT = kDP / 8;   // n8 tiles over the head dim
  constexpr int kRowGroups = BM / 16, kSplit = kWarps / kRowGroups;  // dQ = dS K warp layout
  constexpr int kDqPairs = (kDP / 16 + kSplit - 1) / kSplit;  // column pairs (16 wide) per warp

  const int s = static_cast<int>(blockIdx.z), hk = static_cast<int>(blockIdx.y);
  const int n0 = static_cast<int>(blockIdx.x) * BN;
  const int k0 = p.cu_seqlens_k[s], len_k = p.cu_seqlens_k[s + 1] - k0;
  if (n0 >= len_k) return;
  const int q0 = p.cu_seqlens_q[s], len_q = p.cu_seqlens_q[s + 1] - q0;
  const int group = p.num_heads / p.num_kv_heads;
  const int warp = lf::warp_id(), lane = lf::lane_id(), g = lane >> 2, t = lane & 3;

  T* sK = lf::dynamic_smem<T>();
  T* sV = sK + BN * kPitch;
  T* sQ = sV + BN * kPitch;      // 2 buffers of BM rows
  T* sdO = sQ + 2 * BM * kPitch;  // 2 buffers of BM rows
  T* sdS = sdO + 2 * BM * kPitch;  // dS[query][key]
  float* sLse = reinterpret_cast<float*>(sdS + BM * kSPitch);  // lse * log2(e), +inf on padding rows
  float* sDelta = sLse + BM;

  const SegMask mask = seg_mask(p.mask, s, q0, len_q, k0, len_k);
  load_tile_async<T, D, BN>(sK, static_cast<const T*>(p.k) + (k0 + n0) * p.k_row_stride + hk * p.k_head_stride,
                            p.k_row_stride, len_k - n0);
  load_tile_async<T, D, BN>(sV, static_cast<const T*>(p.v) + (k0 + n0) * p.v_row_stride + hk * p.v_head_stride,
                            p.v_row_stride, len_k - n0);
  lf::cp_async_commit();

  // Query tiles that can see this key tile: causal masks start them late.
  int m_first = 0;
  if (mask.causal) {
    const int first_row = n0 - mask.causal_off;
    m_first = first_row > 0 ? first_row / BM : 0;
  }
  const int m_tiles = (len_q + BM - 1) / BM;
  const float scale_log2 = p.softmax_scale * kLog2e;
  const int key0 = n0 + 16 * warp + g;  // this thread's keys: key0 and key0 + 8 (segment positions)

  float dk[kOT][4], dv[kOT][4];
  LF_UNROLL
  for (int i = 0; i < kOT; ++i) {
    LF_UNROLL
    for (int e = 0; e < 4; ++e) dk[i][e] = dv[i][e] = 0.f;
  }
  float* dq_acc = p.workspace + bwd_delta_floats(p);

  // The block's items are (head of the group, visible query tile), heads in order; the tiles a key
  // tile sees are the same for every head. Q and dO are double-buffered: the next item's copy is
  // issued before this item's math.
  const int h_end = (hk + 1) * group;
  int kind0 = kSkip;
  const int mt0 = next_visible_q<BM, BN>(mask, m_first, m_tiles, n0, kind0);
  int h = hk * group, mt = mt0, kind = kind0, buf = 0;
  if (mt < m_tiles) load_q_do_async<T, D, BM>(sQ, sdO, 0, p, q0, len_q, h, mt);
  lf::cp_async_commit();
  while (mt < m_tiles && h < h_end) {
    // The next item: the next visible tile of this head, else the first of the next head.
    int kind_next = kSkip;
    int h_next = h, mt_next = next_visible_q<BM, BN>(mask, mt + 1, m_tiles, n0, kind_next);
    if (mt_next >= m_tiles) {
      h_next = h + 1;
      mt_next = mt0;
      kind_next = kind0;
    }
    if (h_next < h_end) load_q_do_async<T, D, BM>(sQ, sdO, buf ^ 1, p, q0, len_q, h_next, mt_next);
    lf::cp_async_commit();
    const int m0 = mt * BM;
    for (int r = static_cast<int>(threadIdx.x); r < BM; r += kThreads) {
      const int i = m0 + r;
      const int64_t at = static_cast<int64_t>(h) * p.total_q + q0 + i;
      sLse[r] = i < len_q && p.lse[at] != -INFINITY ? p.lse[at] * kLog2e : INFINITY;
      sDelta[r] = i < len_q ? p.workspace[at] : 0.f;
    }
    lf::cp_async_wait<1>();
    lf::syncthreads();
    const T* sQb = sQ + buf * BM * kPitch;
    const T* sdOb = sdO + buf * BM * kPitch;

    // S^T (this warp's 16 keys x BM queries) and dP^T = V dO^T.
    float st[kQT][4], dpt[kQT][4];
    LF_UNROLL
    for (int i = 0; i < kQT; ++i) {
      LF_UNROLL
      for (int e = 0; e < 4; ++e) st[i][e] = dpt[i][e] = 0.f;
    }
    LF_UNROLL
    for (int kk = 0; kk < kKS; ++kk) {
      uint32_t ka[4], va[4];
      lf::ldmatrix_x4(ka, a_frag_addr(sK, 16 * warp, 16 * kk, kPitch, lane));
      lf::ldmatrix_x4(va, a_frag_addr(sV, 16 * warp, 16 * kk, kPitch, lane));
      LF_UNROLL
      for (int np = 0; np < kQT / 2; ++np) {
        const int off = b_frags_offset(16 * np, 16 * kk, kPitch, lane);
        uint32_t b[4];
        lf::ldmatrix_x4(b, sQb + off);
        const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
        lf::mma_m16n8k16<T>(st[2 * np], ka, b0, st[2 * np]);
        lf::mma_m16n8k16<T>(st[2 * np + 1], ka, b1, st[2 * np + 1]);
        lf::ldmatrix_x4(b, sdOb + off);
        const uint32_t c0[2] = {b[0], b[1]}, c1[2] = {b[2], b[3]};
        lf::mma_m16n8k16<T>(dpt[2 * np], va, c0, dpt[2 * np]);
        lf::mma_m16n8k16<T>(dpt[2 * np + 1], va, c1, dpt[2 * np + 1]);
      }
    }

    // P^T and dS^T in place (element e: key key0 + 8 (e >> 1), query column 8 nt + 2 t + (e & 1)).
    LF_UNROLL
    for (int nt = 0; nt < kQT; ++nt) {
      LF_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int c = 8 * nt + 2 * t + (e & 1), i = m0 + c, j = key0 + 8 * (e >> 1);
        float pv = exp2f(fmaf(st[nt][e], scale_log2, -sLse[c]));
        if (kind == kPartial &&
            (i >= len_q || !visible(mask, i, mask.frame_q ? mask.frame_q[i] : 0, j)))
          pv = 0.f;
        st[nt][e] = pv;
        dpt[nt][e] = pv * (dpt[nt][e] - sDelta[c]);
      }
    }

    // dV += P^T dO, dK += dS^T Q: A from the accumulators (k = queries), B = dO / Q by .trans loads.
    LF_UNROLL
    for (int kk = 0; kk < BM / 16; ++kk) {
      const uint32_t pa[4] = {pack2<T>(st[2 * kk][0], st[2 * kk][1]), pack2<T>(st[2 * kk][2], st[2 * kk][3]),
                              pack2<T>(st[2 * kk + 1][0], st[2 * kk + 1][1]),
                              pack2<T>(st[2 * kk + 1][2], st[2 * kk + 1][3])};
      const uint32_t sa[4] = {pack2<T>(dpt[2 * kk][0], dpt[2 * kk][1]), pack2<T>(dpt[2 * kk][2], dpt[2 * kk][3]),
                              pack2<T>(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]),
                              pack2<T>(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3])};
      LF_UNROLL
      for (int dp = 0; dp < kDP / 16; ++dp) {
        const int off = a_frag_offset(16 * kk, 16 * dp, kPitch, lane);
        uint32_t b[4];
        lf::ldmatrix_x4_trans(b, sdOb + off);
        const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
        lf::mma_m16n8k16<T>(dv[2 * dp], pa, b0, dv[2 * dp]);
        lf::mma_m16n8k16<T>(dv[2 * dp + 1], pa, b1, dv[2 * dp + 1]);
        lf::ldmatrix_x4_trans(b, sQb + off);
        const uint32_t c0[2] = {b[0], b[1]}, c1[2] = {b[2], b[3]};
        lf::mma_m16n8k16<T>(dk[2 * dp], sa, c0, dk[2 * dp]);
        lf::mma_m16n8k16<T>(dk[2 * dp + 1], sa, c1, dk[2 * dp + 1]);
      }
    }

    if (accumulate_dq) {
      // Stage dS (queries x keys) in shared memory, then dQ(rows of this warp's row group, its share
      // of the columns) = dS K, added to the fp32 accumulator.
      LF_UNROLL
      for (int nt = 0; nt < kQT; ++nt) {
        LF_UNROLL
        for (int e = 0; e < 4; ++e)
          sdS[(8 * nt + 2 * t + (e & 1)) * kSPitch + 16 * warp + g + 8 * (e >> 1)] = lf::from_float<T>(dpt[nt][e]);
      }
      lf::syncthreads();
      const int rg = warp % kRowGroups, cs = warp / kRowGroups;
      float dq[2 * kDqPairs][4];
      LF_UNROLL
      for (int i = 0; i < 2 * kDqPairs; ++i) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.f;
      LF_UNROLL
      for (int kk = 0; kk < BN / 16; ++kk) {
        uint32_t a[4];
        lf::ldmatrix_x4(a, a_frag_addr(sdS, 16 * rg, 16 * kk, kSPitch, lane));
        LF_UNROLL
        for (int dp = 0; dp < kDqPairs; ++dp) {
          if (cs * kDqPairs + dp >= kDP / 16) continue;  // warp-uniform: D = 72 has 5 pairs
          uint32_t b[4];
          lf::ldmatrix_x4_trans(b, a_frag_addr(sK, 16 * kk, 16 * (cs * kDqPairs + dp), kPitch, lane));
          const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
          lf::mma_m16n8k16<T>(dq[2 * dp], a, b0, dq[2 * dp]);
          lf::mma_m16n8k16<T>(dq[2 * dp + 1], a, b1, dq[2 * dp + 1]);
        }
      }
      LF_UNROLL
      for (int r = 0; r < 2; ++r) {
        const int i = m0 + 16 * rg + g + 8 * r;
        if (i >= len_q) continue;
        float* row = dq_acc + (static_cast<int64_t>(q0 + i) * p.num_heads + h) * D;
        LF_UNROLL
        for (int n = 0; n < 2 * kDqPairs; ++n) {
          const int col = 16 * cs * kDqPairs + 8 * n + 2 * t;
          if (col < D) {
            lf::atomic_add(row + col, dq[n][2 * r]);
            lf::atomic_add(row + col + 1, dq[n][2 * r + 1]);
          }
        }
      }
    }
    lf::syncthreads();  // readers of this item's buffers, sLse, sDelta and sdS are done
    h = h_next;
    mt = mt_next;
    kind = kind_next;
    buf ^= 1;
  }
  lf::cp_async_wait<0>();  // no copy may still target shared memory when the block ends

  // dK (scaled), dV: (total_k, H_kv, D) contiguous.
  T* gk = static_cast<T*>(p.grad_k);
  T* gv = static_cast<T*>(p.grad_v);
  LF_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int j = key0 + 8 * r;
    if (j >= len_k) continue;
    const int64_t at = (static_cast<int64_t>(k0 + j) * p.num_kv_heads + hk) * D;
    uint32_t* krow = reinterpret_cast<uint32_t*>(gk + at);
    uint32_t* vrow = reinterpret_cast<uint32_t*>(gv + at);
    LF_UNROLL
    for (int dt = 0; dt < kOT; ++dt) {
      const int col = 8 * dt + 2 * t;
      if (col < D) {
        krow[col / 2] = pack2<T>(dk[dt][2 * r] * p.softmax_scale, dk[dt][2 * r + 1] * p.softmax_scale);
        vrow[col / 2] = pack2<T>(dv[dt][2 * r], dv[dt][2 * r + 1]);
      }
    }
  }
}

// ---- atomic mode: grad_q = scale * accumulator ----

template <typename T>
LF_GLOBAL void LF_LAUNCH_BOUNDS(256) attention_bwd_dq_convert_kernel(VarlenAttentionBwdParams p) {
  const int64_t n = p.total_q * p.num_heads * p.head_dim;
  const float* acc = p.workspace + bwd_delta_floats(p);
  T* gq = static_cast<T*>(p.grad_q);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    gq[i] = lf::from_float<T>(acc[i] * p.softmax_scale);
}

// ---- deterministic mode: dQ by query tiles ----

template <typename T, int D>
LF_GLOBAL void LF_LAUNCH_BOUNDS_MIN(kThreads, kMinBlocks) attention_bwd_dq_kernel(VarlenAttentionBwdParams p) {
  using H = HeadDim<D>;
  constexpr int BM = kDqBM, BN = kDqBN, kDP = H::kDP, kPitch = H::kPitch;
  constexpr int kKS = kDP / 16, kNT = BN / 8, kOT = kDP / 8;

  const int s = static_cast<int>(blockIdx.z), h = static_cast<int>(blockIdx.y);
  const int m0 = static_cast<int>(blockIdx.x) * BM;
  const int q0 = p.cu_seqlens_q[s], len_q = p.cu_seqlens_q[s + 1] - q0;
  if (m0 >= len_q) return;
  const int k0 = p.cu_seqlens_k[s], len_k = p.cu_seqlens_k[s + 1] - k0;
  const int hk = h / (p.num_heads / p.num_kv_heads);
  const int warp = lf::warp_id(), lane = lf::lane_id(), g = lane >> 2, t = lane & 3;

  T* sQ = lf::dynamic_smem<T>();
  T* sdO = sQ + BM * kPitch;
  T* sK = sdO + BM * kPitch;     // 2 buffers
  T* sV = sK + 2 * BN * kPitch;  // 2 buffers
  const T* kbase = static_cast<const T*>(p.k) + k0 * p.k_row_stride + hk * p.k_head_stride;
  const T* vbase = static_cast<const T*>(p.v) + k0 * p.v_row_stride + hk * p.v_head_stride;
  const SegMask mask = seg_mask(p.mask, s, q0, len_q, k0, len_k);

  load_tile_async<T, D, BM>(sQ, static_cast<const T*>(p.q) + (q0 + m0) * p.q_row_stride + h * p.q_head_stride,
                            p.q_row_stride, len_q - m0);
  load_tile_async<T, D, BM>(sdO,
                            static_cast<const T*>(p.grad_out) + (q0 + m0) * p.grad_out_row_stride +
                                h * p.grad_out_head_stride,
                            p.grad_out_row_stride, len_q - m0);
  lf::cp_async_commit();

  const int n_tiles = key_tiles<BN>(mask, m0, BM);
  int kind = kSkip;
  int cur = next_visible<BN>(mask, m0, BM, 0, n_tiles, kind);
  if (cur < n_tiles)
    load_kv_async<T, D, BN>(sK, sV, 0, kbase, p.k_row_stride, vbase, p.v_row_stride, cur * BN, len_k);
  lf::cp_async_commit();

  const int row0 = m0 + 16 * warp + g;
  float lse2[2], delta[2];
  int frow[2] = {0, 0};
  LF_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int i = row0 + 8 * r;
    const int64_t at = static_cast<int64_t>(h) * p.total_q + q0 + i;
    lse2[r] = i < len_q && p.lse[at] != -INFINITY ? p.lse[at] * kLog2e : INFINITY;
    delta[r] = i < len_q ? p.workspace[at] : 0.f;
    if (mask.frame_q && i < len_q) frow[r] = mask.frame_q[i];
  }
  const float scale_log2 = p.softmax_scale * kLog2e;
  float dq[kOT][4];
  LF_UNROLL
  for (int i = 0; i < kOT; ++i) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.f;

  int buf = 0;
  while (cur < n_tiles) {
    int next_kind = kSkip;
    const int nxt = next_visible<BN>(mask, m0, BM, cur + 1, n_tiles, next_kind);
    if (nxt < n_tiles)
      load_kv_async<T, D, BN>(sK, sV, buf ^ 1, kbase, p.k_row_stride, vbase, p.v_row_stride, nxt * BN, len_k);
    lf::cp_async_commit();
    lf::cp_async_wait<1>();
    lf::syncthreads();
    const T* k_s = sK + buf * BN * kPitch;
    const T* v_s = sV + buf * BN * kPitch;

    float sc[kNT][4], dp[kNT][4];
    LF_UNROLL
    for (int i = 0; i < kNT; ++i) {
      LF_UNROLL
      for (int e = 0; e < 4; ++e) sc[i][e] = dp[i][e] = 0.f;
    }
    LF_UNROLL
    for (int kk = 0; kk < kKS; ++kk) {
      uint32_t qa[4], ga[4];
      // a_frag_addr(sQ / sdO, 16 * warp, 16 * kk, kPitch, lane), spelled out to keep this kernel's SASS
      // (see attention_tile.cuh).
      lf::ldmatrix_x4(qa, sQ + (16 * warp + (lane & 15)) * kPitch + 16 * kk + 8 * (lane >> 4));
      lf::ldmatrix_x4(ga, sdO + (16 * warp + (lane & 15)) * kPitch + 16 * kk + 8 * (lane >> 4));
      LF_UNROLL
      for (int np = 0; np < kNT / 2; ++np) {
        const int off = b_frags_offset(16 * np, 16 * kk, kPitch, lane);
        uint32_t b[4];
        lf::ldmatrix_x4(b, k_s + off);
        const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
        lf::mma_m16n8k16<T>(sc[2 * np], qa, b0, sc[2 * np]);
        lf::mma_m16n8k16<T>(sc[2 * np + 1], qa, b1, sc[2 * np + 1]);
        lf::ldmatrix_x4(b, v_s + off);
        const uint32_t c0[2] = {b[0], b[1]}, c1[2] = {b[2], b[3]};
        lf::mma_m16n8k16<T>(dp[2 * np], ga, c0, dp[2 * np]);
        lf::mma_m16n8k16<T>(dp[2 * np + 1], ga, c1, dp[2 * np + 1]);
      }
    }
    LF_UNROLL
    for (int nt = 0; nt < kNT; ++nt) {
      LF_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1, i = row0 + 8 * r, j = cur * BN + 8 * nt + 2 * t + (e & 1);
        float pv = exp2f(fmaf(sc[nt][e], scale_log2, -lse2[r]));
        if (kind == kPartial && (i >= len_q || !visible(mask, i, frow[r], j))) pv = 0.f;
        dp[nt][e] = pv * (dp[nt][e] - delta[r]);
      }
    }
    // dQ += dS K: K (keys x d, row-major) as B by .trans loads.
    mma_acc_times_tile<T, D, BN>(dq, dp, k_s, lane);
    lf::syncthreads();
    cur = nxt;
    kind = next_kind;
    buf ^= 1;
  }
  lf::cp_async_wait<0>();

  T* gq = static_cast<T*>(p.grad_q);
  LF_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int i = row0 + 8 * r;
    if (i >= len_q) continue;
    uint32_t* row = reinterpret_cast<uint32_t*>(gq + (static_cast<int64_t>(q0 + i) * p.num_heads + h) * D);
    LF_UNROLL
    for (int dt = 0; dt < kOT; ++dt) {
      const int col = 8 * dt + 2 * t;
      if (col < D) row[col / 2] = pack2<T>(dq[dt][2 * r] * p.softmax_scale, dq[dt][2 * r + 1] * p.softmax_scale);
    }
  }
}

}  // namespace lavin_fast::attention_kernels
