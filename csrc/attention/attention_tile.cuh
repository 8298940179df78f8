// Shared pieces of the attention kernels (attention_fwd_kernel.cuh, attention_bwd_kernel.cuh), in the
// portable dialect: tile geometry per head dim, 16-bit packing for mma fragments, cp.async tile loads,
// and the masks (per element and per tile). No torch headers.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"
#include "simt/cp_async.cuh"
#include "simt/dialect.cuh"
#include "simt/tensor_core.cuh"

namespace lavin_fast::attention_kernels {

constexpr int kWarps = 4;  // every attention kernel runs 4 warps
constexpr int kThreads = kWarps * 32;
// Blocks per SM the main kernels are sized for: up to 255 registers a thread. With ptxas's default
// for 128-thread blocks (168 registers) the head-dim-72 forward spilled.
constexpr int kMinBlocks = 2;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Head dim D is held padded to kDP (a multiple of the mma k = 16: 64, 80, 128) in shared memory and
// registers; the padding columns are zero-filled by cp.async and never written back. Shared rows are
// kPitch elements apart: 16 bytes more than a multiple of 128 bytes' stride pattern, so the 8 row
// addresses of an ldmatrix hit 8 different 16-byte bank groups.
template <int D>
struct HeadDim {
  static_assert(D % 8 == 0 && D <= 128, "head dims are multiples of 8 up to 128");
  static constexpr int kD = D;
  static constexpr int kDP = (D + 15) / 16 * 16;
  static constexpr int kPitch = kDP + 8;
  static constexpr int kChunks = D / 8;     // 16-byte chunks holding data in a row
  static constexpr int kChunksP = kDP / 8;  // 16-byte chunks of a padded row
};

// Two floats -> the 32-bit register of two 16-bit values an mma fragment holds (lower index low).
template <typename T>
LF_DEVICE uint32_t pack2(float lo, float hi) {
  const uint32_t l = lf::bit_cast<uint16_t>(lf::from_float<T>(lo));
  const uint32_t h = lf::bit_cast<uint16_t>(lf::from_float<T>(hi));
  return l | (h << 16);
}

// Rows [0, R) x padded columns of a tile from global `src` (row r at src + r * stride) into shared
// `dst` (pitch kPitch), by all kThreads threads with 16-byte cp.async. Rows >= valid and the padding
// columns are zero-filled (src_bytes = 0, reading nothing from the still valid row-0 address).
template <typename T, int D, int R>
LF_DEVICE void load_tile_async(T* dst, const T* src, int64_t stride, int valid) {
  using H = HeadDim<D>;
  constexpr int kTotal = R * H::kChunksP;
  LF_UNROLL
  for (int i = 0; i < (kTotal + kThreads - 1) / kThreads; ++i) {
    const int idx = i * kThreads + static_cast<int>(threadIdx.x);
    if (kTotal % kThreads != 0 && idx >= kTotal) break;
    const int r = idx / H::kChunksP, c = idx % H::kChunksP;
    const bool in = r < valid && c < H::kChunks;
    const T* from = in ? src + r * stride + c * 8 : src;
    lf::cp_async<16>(dst + r * H::kPitch + c * 8, from, in ? 16 : 0);
  }
}

// Where each lane points ldmatrix x4 in a row-major shared tile (pitch elements a row): the 16 x 16
// block at (row0, col0), lane L giving the address of row L % 8 of matrix L / 8.
// - a_frag_*: matrices (rows 0-7, cols 0-7), (rows 8-15, cols 0-7), (rows 0-7, cols 8-15),
//   (rows 8-15, cols 8-15): the mma A fragment of rows x k; with .trans, the B fragments of two n8 tiles
//   of a tile stored k x n (rows = k).
// - b_frags_*: matrices (rows 0-7, cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 0-7),
//   (rows 8-15, cols 8-15): the B fragments of two n8 tiles of a tile stored n x k (rows = n, as K in
//   S = Q K^T).
// *_offset is the element offset (one offset serving two tiles of the same pitch); *_addr the address in
// `tile`. Two places keep the sum spelled out (mma_acc_times_tile, attention_bwd_dq_kernel's Q / dO
// fragments): through either helper, ptxas schedules the dQ kernel's address arithmetic differently.
LF_DEVICE int a_frag_offset(int row0, int col0, int pitch, int lane) {
  return (row0 + (lane & 15)) * pitch + col0 + 8 * (lane >> 4);
}
LF_DEVICE int b_frags_offset(int row0, int col0, int pitch, int lane) {
  return (row0 + (lane & 7) + 8 * (lane >> 4)) * pitch + col0 + 8 * ((lane >> 3) & 1);
}
template <typename T>
LF_DEVICE T* a_frag_addr(T* tile, int row0, int col0, int pitch, int lane) {
  return tile + (row0 + (lane & 15)) * pitch + col0 + 8 * (lane >> 4);
}
template <typename T>
LF_DEVICE T* b_frags_addr(T* tile, int row0, int col0, int pitch, int lane) {
  return tile + (row0 + (lane & 7) + 8 * (lane >> 4)) * pitch + col0 + 8 * ((lane >> 3) & 1);
}

// acc (16 rows x kDP, kDP / 8 n8 tiles, mma C layout) += A (16 x BN, fp32 in the C layout of BN / 8
// n8 tiles: n8 tiles 2kk, 2kk + 1 are the A fragment of k step kk, rounded to T) times the BN x kDP
// row-major shared tile b_s (pitch kPitch), its B fragments by ldmatrix .trans. O += P V in the
// forward, dQ += dS K in the backward.
template <typename T, int D, int BN>
LF_DEVICE void mma_acc_times_tile(float (&acc)[HeadDim<D>::kDP / 8][4], const float (&a_acc)[BN / 8][4],
                                  const T* b_s, int lane) {
  constexpr int kDP = HeadDim<D>::kDP, kPitch = HeadDim<D>::kPitch;
  LF_UNROLL
  for (int kk = 0; kk < BN / 16; ++kk) {
    const uint32_t a[4] = {pack2<T>(a_acc[2 * kk][0], a_acc[2 * kk][1]),
                           pack2<T>(a_acc[2 * kk][2], a_acc[2 * kk][3]),
                           pack2<T>(a_acc[2 * kk + 1][0], a_acc[2 * kk + 1][1]),
                           pack2<T>(a_acc[2 * kk + 1][2], a_acc[2 * kk + 1][3])};
    LF_UNROLL
    for (int dp = 0; dp < kDP / 16; ++dp) {
      uint32_t b[4];
      // a_frag_addr(b_s, 16 * kk, 16 * dp, kPitch, lane), spelled out: through the helper ptxas
      // schedules the deterministic dQ kernel differently (its SASS changes; the forward's does not).
      lf::ldmatrix_x4_trans(b, b_s + (16 * kk + (lane & 15)) * kPitch + 16 * dp + 8 * (lane >> 4));
      const uint32_t b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
      lf::mma_m16n8k16<T>(acc[2 * dp], a, b0, acc[2 * dp]);
      lf::mma_m16n8k16<T>(acc[2 * dp + 1], a, b1, acc[2 * dp + 1]);
    }
  }
}

// ---- masks ----

// One segment's view of the masks (attention_params.h): pointers already offset to the segment.
struct SegMask {
  int len_q = 0, len_k = 0;
  bool causal = false;
  int causal_off = 0;               // len_k - len_q: query i sees keys j <= i + causal_off
  const int32_t* frame_q = nullptr;  // segment's frame ids, or null
  const int32_t* frame_k = nullptr;
  const uint8_t* tiles = nullptr;  // segment's (n_tiles_q, n_tiles_k) tile mask, or null
  int tile_q = 1, tile_k = 1, n_tiles_k = 0;
};

LF_DEVICE SegMask seg_mask(const AttentionMask& m, int s, int q0, int len_q, int k0, int len_k) {
  SegMask r;
  r.len_q = len_q;
  r.len_k = len_k;
  r.causal = m.causal;
  r.causal_off = len_k - len_q;
  if (m.frame_q) {
    r.frame_q = m.frame_q + q0;
    r.frame_k = m.frame_k + k0;
  }
  if (m.tile_mask) {
    r.tiles = m.tile_mask + static_cast<int64_t>(s) * m.n_tiles_q * m.n_tiles_k;
    r.tile_q = m.tile_q;
    r.tile_k = m.tile_k;
    r.n_tiles_k = m.n_tiles_k;
  }
  return r;
}

// Whether query i may see key j (both in range of the segment; rows/keys outside are the caller's).
// fq: frame of query i (read once per row by the caller), unused without frames.
LF_DEVICE bool visible(const SegMask& m, int i, int fq, int j) {
  if (j >= m.len_k) return false;
  if (m.causal && j > i + m.causal_off) return false;
  if (m.frame_k && m.frame_k[j] > fq) return false;
  if (m.tiles && !m.tiles[(i / m.tile_q) * m.n_tiles_k + j / m.tile_k]) return false;
  return true;
}

enum TileKind : int { kSkip = 0, kPartial = 1, kFull = 2 };

// Min and max of ids[0..n) over the warp (every lane of every warp calls it: the result is uniform).
LF_DEVICE void warp_minmax(const int32_t* ids, int n, int& lo, int& hi) {
  lo = 0x7fffffff;
  hi = -0x7fffffff - 1;
  for (int i = lf::lane_id(); i < n; i += 32) {
    const int v = ids[i];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  LF_UNROLL
  for (int o = 16; o > 0; o /= 2) {
    const int a = lf::shfl_xor(lf::kFullMask, lo, o), b = lf::shfl_xor(lf::kFullMask, hi, o);
    lo = a < lo ? a : lo;
    hi = b > hi ? b : hi;
  }
}

// Query rows [m0, m0 + rows) x keys [n0, n0 + BN) of a segment: no pair visible (kSkip), every pair of
// in-range rows visible (kFull), or to be masked per element. Rows past len_q never matter; keys past
// len_k make a tile partial. Every thread of the block calls it with the same arguments (the frame and
// tile-mask checks are warp reductions, done redundantly by each warp so no barrier is needed).
template <int BN>
LF_DEVICE int classify_tile(const SegMask& m, int m0, int rows, int n0) {
  const int m1 = m0 + rows < m.len_q ? m0 + rows : m.len_q;  // rows [m0, m1), m1 > m0
  const int n1 = n0 + BN < m.len_k ? n0 + BN : m.len_k;
  if (m1 <= m0 || n1 <= n0) return kSkip;
  bool full = n1 - n0 == BN;
  if (m.causal) {
    if (n0 > m1 - 1 + m.causal_off) return kSkip;
    full = full && n1 - 1 <= m0 + m.causal_off;
  }
  if (m.frame_q) {
    int qlo, qhi, klo, khi;
    warp_minmax(m.frame_q + m0, m1 - m0, qlo, qhi);
    warp_minmax(m.frame_k + n0, n1 - n0, klo, khi);
    if (klo > qhi) return kSkip;
    full = full && khi <= qlo;
  }
  if (m.tiles) {
    const int ti0 = m0 / m.tile_q, ti1 = (m1 - 1) / m.tile_q;
    const int tj0 = n0 / m.tile_k, tj1 = (n1 - 1) / m.tile_k;
    const int nj = tj1 - tj0 + 1, n = (ti1 - ti0 + 1) * nj;
    bool any_set = false, all_set = true;
    for (int base = 0; base < n; base += 32) {
      const int idx = base + lf::lane_id();
      bool set = true;
      if (idx < n) {
        set = m.tiles[(ti0 + idx / nj) * m.n_tiles_k + tj0 + idx % nj] != 0;
        any_set = any_set || set;
      }
      all_set = all_set && set;
    }
    if (!lf::any(lf::kFullMask, any_set)) return kSkip;
    full = full && lf::all(lf::kFullMask, all_set);
  }
  return full ? kFull : kPartial;
}

// Key tiles of BN that rows [m0, m0 + rows) can see at all: the causal limit cuts the range short.
template <int BN>
LF_DEVICE int key_tiles(const SegMask& m, int m0, int rows) {
  int n_end = m.len_k;
  if (m.causal) {
    const int lim = (m0 + rows < m.len_q ? m0 + rows : m.len_q) - 1 + m.causal_off + 1;
    n_end = lim < n_end ? lim : n_end;
  }
  return n_end > 0 ? (n_end + BN - 1) / BN : 0;
}

// The first key tile >= from, < n_tiles, that is not fully masked (n_tiles if none), and its kind.
template <int BN>
LF_DEVICE int next_visible(const SegMask& m, int m0, int rows, int from, int n_tiles, int& kind) {
  for (int n = from; n < n_tiles; ++n) {
    kind = classify_tile<BN>(m, m0, rows, n * BN);
    if (kind != kSkip) return n;
  }
  return n_tiles;
}

// K and V rows [n0, n0 + BN) of a segment (len_k keys) into buffer `buf` of sK / sV (2 x BN rows).
template <typename T, int D, int BN>
LF_DEVICE void load_kv_async(T* sK, T* sV, int buf, const T* k, int64_t k_stride, const T* v, int64_t v_stride,
                             int n0, int len_k) {
  constexpr int kPitch = HeadDim<D>::kPitch;
  load_tile_async<T, D, BN>(sK + buf * BN * kPitch, k + n0 * k_stride, k_stride, len_k - n0);
  load_tile_async<T, D, BN>(sV + buf * BN * kPitch, v + n0 * v_stride, v_stride, len_k - n0);
}

}  // namespace lavin_fast::attention_kernels
