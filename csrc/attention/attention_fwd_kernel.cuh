// Varlen attention forward in the FlashAttention-2 design, in the portable dialect (nvcc for sm_80+,
// g++ for the SIMT emulator). One block of 4 warps per (query tile of 64 rows, query head, segment);
// blocks past their segment's length exit at once. Each warp owns 16 (packed) query rows:
//   Q tile -> shared (cp.async) -> registers as mma A fragments (ldmatrix x4), once;
//   per visible key tile of 64: K and V double-buffered through shared memory with cp.async (the next
//   visible tile's copy overlaps this tile's math), S = Q K^T by mma.m16n8k16 with K as B fragments
//   (ldmatrix x4), masks per element only on partial tiles, online softmax in base 2 with
//   softmax_scale * log2(e) folded into one FMA, P packed to 16-bit A fragments straight from the
//   accumulators, O += P V with V as B fragments (ldmatrix x4 .trans).
// Fully masked key tiles (classify_tile) cost neither loads nor mma. Query head h reads KV head
// h / (H / H_kv); the heads of a GQA group are packed into the rows of one block (FlashAttention's
// pack-GQA), so each K/V tile is copied once for all of them. A row that sees no key writes 0 and
// lse = -inf.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"
#include "attention/attention_tile.cuh"

namespace lavin_fast::attention_kernels {

constexpr int kFwdBM = 64;  // query rows per block (16 per warp)
constexpr int kFwdBN = 64;  // keys per tile

// Dynamic shared memory: Q tile + 2 x (K tile + V tile).
template <int D>
constexpr size_t fwd_smem_bytes(size_t elem_bytes) {
  return static_cast<size_t>(kFwdBM + 4 * kFwdBN) * HeadDim<D>::kPitch * elem_bytes;
}

// GQA heads packed into a block's rows: `pack` heads (a divisor of H / H_kv, dividing kFwdBM) share
// every K/V tile. Packed row P of block (x, y) is query m0 + P / pack of head y * pack + P % pack, with
// m0 = x * kFwdBM / pack: one copy of a K/V tile serves `pack` heads.
template <typename T, int D>
LF_GLOBAL void LF_LAUNCH_BOUNDS_MIN(kThreads, kMinBlocks) attention_fwd_kernel(VarlenAttentionFwdParams p, int pack) {
  using H = HeadDim<D>;
  constexpr int BM = kFwdBM, BN = kFwdBN, kDP = H::kDP, kPitch = H::kPitch;
  constexpr int kKS = kDP / 16;  // k steps of S = Q K^T
  constexpr int kNT = BN / 8;    // n8 tiles of S
  constexpr int kOT = kDP / 8;   // n8 tiles of O

  const int s = static_cast<int>(blockIdx.z), h0 = static_cast<int>(blockIdx.y) * pack;
  const int rows = BM / pack;  // queries of this block
  const int m0 = static_cast<int>(blockIdx.x) * rows;
  const int q0 = p.cu_seqlens_q[s], len_q = p.cu_seqlens_q[s + 1] - q0;
  if (m0 >= len_q) return;
  const int k0 = p.cu_seqlens_k[s], len_k = p.cu_seqlens_k[s + 1] - k0;
  const int hk = h0 / (p.num_heads / p.num_kv_heads);
  const int warp = lf::warp_id(), lane = lf::lane_id(), g = lane >> 2, t = lane & 3;

  T* sQ = lf::dynamic_smem<T>();
  T* sK = sQ + BM * kPitch;      // 2 buffers of BN rows
  T* sV = sK + 2 * BN * kPitch;  // 2 buffers of BN rows

  const T* q = static_cast<const T*>(p.q) + (q0 + m0) * p.q_row_stride + h0 * p.q_head_stride;
  const T* kbase = static_cast<const T*>(p.k) + k0 * p.k_row_stride + hk * p.k_head_stride;
  const T* vbase = static_cast<const T*>(p.v) + k0 * p.v_row_stride + hk * p.v_head_stride;
  const SegMask mask = seg_mask(p.mask, s, q0, len_q, k0, len_k);

  // Q tile: packed row r is (query m0 + r / pack, head h0 + r % pack); rows past the segment zero-filled.
  {
    constexpr int kTotal = BM * H::kChunksP;
    static_assert(kTotal % kThreads == 0, "Q tile chunks divide over the block");
    LF_UNROLL
    for (int i = 0; i < kTotal / kThreads; ++i) {
      const int idx = i * kThreads + static_cast<int>(threadIdx.x);
      const int r = idx / H::kChunksP, c = idx % H::kChunksP;
      const int qi = r / pack, hh = r % pack;
      const bool in = m0 + qi < len_q && c < H::kChunks;
      const T* from = in ? q + qi * p.q_row_stride + hh * p.q_head_stride + c * 8 : q;
      lf::cp_async<16>(sQ + r * kPitch + c * 8, from, in ? 16 : 0);
    }
  }
  lf::cp_async_commit();

  const int n_tiles = key_tiles<BN>(mask, m0, rows);
  int kind = kSkip;
  int cur = next_visible<BN>(mask, m0, rows, 0, n_tiles, kind);
  if (cur < n_tiles)
    load_kv_async<T, D, BN>(sK, sV, 0, kbase, p.k_row_stride, vbase, p.v_row_stride, cur * BN, len_k);
  lf::cp_async_commit();

  // Q fragments: warp rows [16 warp, 16 warp + 16), k step kk.
  lf::cp_async_wait<1>();
  lf::syncthreads();
  uint32_t qf[kKS][4];
  LF_UNROLL
  for (int kk = 0; kk < kKS; ++kk)
    lf::ldmatrix_x4(qf[kk], a_frag_addr(sQ, 16 * warp, 16 * kk, kPitch, lane));

  // This thread's two packed rows (g and g + 8 of the warp's 16): query, head, frame id.
  int qrow[2], head[2], frow[2] = {0, 0};
  LF_UNROLL
  for (int r = 0; r < 2; ++r) {
    const int packed = 16 * warp + g + 8 * r;
    qrow[r] = m0 + packed / pack;
    head[r] = h0 + packed % pack;
    if (mask.frame_q && qrow[r] < len_q) frow[r] = mask.frame_q[qrow[r]];
  }

  const float scale_log2 = p.softmax_scale * kLog2e;
  float o[kOT][4];
  LF_UNROLL
  for (int i = 0; i < kOT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY};  // running max of score * scale_log2
  float row_sum[2] = {0.f, 0.f};              // this thread's share of the running sums

  int buf = 0;
  while (cur < n_tiles) {
    int next_kind = kSkip;
    const int nxt = next_visible<BN>(mask, m0, rows, cur + 1, n_tiles, next_kind);
    if (nxt < n_tiles)
      load_kv_async<T, D, BN>(sK, sV, buf ^ 1, kbase, p.k_row_stride, vbase, p.v_row_stride, nxt * BN, len_k);
    lf::cp_async_commit();
    lf::cp_async_wait<1>();
    lf::syncthreads();
    const T* k_s = sK + buf * BN * kPitch;
    const T* v_s = sV + buf * BN * kPitch;

    // S = Q K^T: B fragments of two n8 tiles (keys 16 np .. 16 np + 15) per ldmatrix x4.
    float sc[kNT][4];
    LF_UNROLL
    for (int i = 0; i < kNT; ++i) sc[i][0] = sc[i][1] = sc[i][2] = sc[i][3] = 0.f;
    LF_UNROLL
    for (int kk = 0; kk < kKS; ++kk) {
      LF_UNROLL
      for (int np = 0; np < kNT / 2; ++np) {
        uint32_t b[4];
        lf::ldmatrix_x4(b, b_frags_addr(k_s, 16 * np, 16 * kk, kPitch, lane));
        const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
        lf::mma_m16n8k16<T>(sc[2 * np], qf[kk], b0, sc[2 * np]);
        lf::mma_m16n8k16<T>(sc[2 * np + 1], qf[kk], b1, sc[2 * np + 1]);
      }
    }

    if (kind == kPartial) {
      LF_UNROLL
      for (int nt = 0; nt < kNT; ++nt) {
        LF_UNROLL
        for (int e = 0; e < 4; ++e) {
          const int i = qrow[e >> 1], j = cur * BN + 8 * nt + 2 * t + (e & 1);
          if (i >= len_q || !visible(mask, i, frow[e >> 1], j)) sc[nt][e] = -INFINITY;
        }
      }
    }

    // Online softmax, rows g (elements 0, 1) and g + 8 (elements 2, 3); a row is spread over the 4
    // lanes of a quad.
    LF_UNROLL
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
      LF_UNROLL
      for (int nt = 0; nt < kNT; ++nt) mx = fmaxf(mx, fmaxf(sc[nt][2 * r], sc[nt][2 * r + 1]));
      mx = fmaxf(mx, lf::shfl_xor(lf::kFullMask, mx, 1));
      mx = fmaxf(mx, lf::shfl_xor(lf::kFullMask, mx, 2));
      const float m_new = fmaxf(row_max[r], mx * scale_log2);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // no (-inf) - (-inf)
      const float alpha = exp2f(row_max[r] - m_use);
      row_max[r] = m_new;
      float sum = 0.f;
      LF_UNROLL
      for (int nt = 0; nt < kNT; ++nt) {
        LF_UNROLL
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          sc[nt][e] = exp2f(fmaf(sc[nt][e], scale_log2, -m_use));
          sum += sc[nt][e];
        }
      }
      row_sum[r] = row_sum[r] * alpha + sum;
      LF_UNROLL
      for (int dt = 0; dt < kOT; ++dt) {
        o[dt][2 * r] *= alpha;
        o[dt][2 * r + 1] *= alpha;
      }
    }

    // O += P V: P's accumulators are the A fragments.
    mma_acc_times_tile<T, D, BN>(o, sc, v_s, lane);
    lf::syncthreads();  // buffer `buf` is refilled by the next iteration's prefetch
    cur = nxt;
    kind = next_kind;
    buf ^= 1;
  }
  lf::cp_async_wait<0>();

  // Normalise and write: out (total_q, H, D) contiguous, lse (H, total_q) natural log.
  T* out = static_cast<T*>(p.out);
  LF_UNROLL
  for (int r = 0; r < 2; ++r) {
    float l = row_sum[r];
    l += lf::shfl_xor(lf::kFullMask, l, 1);
    l += lf::shfl_xor(lf::kFullMask, l, 2);
    const int i = qrow[r], h = head[r];
    if (i >= len_q) continue;
    const float inv = l != 0.f ? 1.f / l : 0.f;  // l == 0: no key seen; NaN propagates
    uint32_t* orow = reinterpret_cast<uint32_t*>(out + (static_cast<int64_t>(q0 + i) * p.num_heads + h) * D);
    LF_UNROLL
    for (int dt = 0; dt < kOT; ++dt) {
      const int col = 8 * dt + 2 * t;
      if (col < D) orow[col / 2] = pack2<T>(o[dt][2 * r] * inv, o[dt][2 * r + 1] * inv);
    }
    if (t == 0) p.lse[static_cast<int64_t>(h) * p.total_q + q0 + i] = l != 0.f ? (row_max[r] + log2f(l)) * kLn2 : -INFINITY;
  }
}

}  // namespace lavin_fast::attention_kernels
