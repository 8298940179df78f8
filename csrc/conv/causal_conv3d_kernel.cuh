// Device code of the causal 3-D convolution forward: an implicit GEMM in the portable dialect
// (simt/dialect.cuh), compiled by nvcc for the GPU and by g++ for the SIMT emulator. No torch headers.
//
//   y[m, o] = bias[o] + sum_k A[m, k] * B[o, k]
//   m = (n, t_o, h_o, w_o) output position, o output channel, k = (c, dt, dh, dw) ordered like the
//   weight's contiguous (O, C, k_t, k_h, k_w) layout, so B is the weight matrix itself (rows padded
//   to weight_row_stride, a multiple of kBlockK, by the host: B tiles need no k predicates).
//   A[m, k] = x[n, c, t_o*s_t + dt - (k_t - 1), h_o*s_h + dh - p_h, w_o*s_w + dw - p_w], read through
//   the padding instead of from a padded copy: frame index clamped to 0 (replicate), zero (zeros) or
//   read from the cache tensor (cache frame t_o*s_t + dt), spatial zero padding by predication.
//
// Tiles: 64 positions x 64 channels x 32 k per block, 4 warps of 32 x 32 (2 m16 x 4 n8 mma tiles).
// B (weights, rows of 16-byte chunks) arrives by cp.async; A is gathered by plain loads (its elements
// are 2-byte values at arbitrary strides and shifted by the padding, which cp.async's 4/8/16-byte
// aligned copies cannot express) into registers, one stage ahead, then stored to shared memory.
// Both stages double-buffered. fp32 accumulation, bf16 / fp16 in and out.
#pragma once

#include <cstdint>

#include "conv/causal_conv3d_params.h"
#include "simt/cp_async.cuh"
#include "simt/dialect.cuh"
#include "simt/tensor_core.cuh"

namespace lavin_fast::conv_kernels {

using conv::CausalConv3dParams;
using conv::TemporalPad;

constexpr int kBlockM = 64;
constexpr int kBlockN = 64;
constexpr int kBlockK = 32;
constexpr int kThreads = 128;
// Shared-memory row pitch in elements: 32 + 8 keeps rows 16-byte aligned (ldmatrix) and shifts
// consecutive rows by 4 banks, so the 8 row addresses of an ldmatrix phase hit distinct banks.
constexpr int kPitch = kBlockK + 8;
constexpr int kStageElems = (kBlockM + kBlockN) * kPitch;
constexpr int kSmemBytes = 2 * kStageElems * 2;  // two stages of 16-bit A and B tiles: 20480 bytes
// Each thread gathers half a row of the A tile per stage: row tid % 64, k half tid / 64.
constexpr int kAPerThread = kBlockM * kBlockK / kThreads;  // 16
static_assert(kAPerThread == kBlockK / 2, "one thread, half an A row");

// The output position a thread gathers for, decoded once per block.
struct RowCoord {
  bool valid;
  int64_t n, t0, h0, w0;  // first input frame / row / column of its window (may be negative)
};

LF_DEVICE RowCoord decode_row(const CausalConv3dParams& p, int64_t m) {
  RowCoord r{};
  const int64_t total = p.n * p.t_out * p.h_out * p.w_out;
  r.valid = m < total;
  if (!r.valid) return r;
  const int64_t wo = m % p.w_out;
  int64_t q = m / p.w_out;
  const int64_t ho = q % p.h_out;
  q /= p.h_out;
  const int64_t to = q % p.t_out;
  r.n = q / p.t_out;
  r.t0 = to * p.st - (p.kt - 1);
  r.h0 = ho * p.sh - p.ph;
  r.w0 = wo * p.sw - p.pw;
  return r;
}

// A[m, k0 .. k0 + 16) of one row into registers: zeros outside the frame, the causal padding read by
// clamping / zero-fill / from the cache.
template <typename T>
LF_DEVICE void gather_a(const CausalConv3dParams& p, const RowCoord& r, int64_t k0, int64_t k_total,
                        T (&out)[kAPerThread]) {
  const T* x = static_cast<const T*>(p.x);
  const T* cache = static_cast<const T*>(p.cache);
  const int64_t taps = p.kt * p.kh * p.kw;
  int64_t c = k0 / taps;
  int64_t rem = k0 % taps;
  int64_t dt = rem / (p.kh * p.kw);
  int64_t dh = (rem / p.kw) % p.kh;
  int64_t dw = rem % p.kw;
  LF_UNROLL
  for (int i = 0; i < kAPerThread; ++i) {
    float v = 0.f;
    const int64_t ti = r.t0 + dt, hi = r.h0 + dh, wi = r.w0 + dw;
    if (r.valid && k0 + i < k_total && hi >= 0 && hi < p.h && wi >= 0 && wi < p.w) {
      if (ti >= 0) {
        v = lf::to_float(x[r.n * p.x_n_stride + c * p.x_c_stride + ti * p.x_t_stride + hi * p.x_h_stride +
                           wi * p.x_w_stride]);
      } else if (p.pad == TemporalPad::kReplicate) {
        v = lf::to_float(x[r.n * p.x_n_stride + c * p.x_c_stride + hi * p.x_h_stride + wi * p.x_w_stride]);
      } else if (p.pad == TemporalPad::kCache) {
        // Padded frame ti + k_t - 1 < k_t - 1 is that frame of the cache.
        v = lf::to_float(cache[r.n * p.cache_n_stride + c * p.cache_c_stride + (ti + p.kt - 1) * p.cache_t_stride +
                               hi * p.cache_h_stride + wi * p.cache_w_stride]);
      }
    }
    out[i] = lf::from_float<T>(v);
    // Next k: dw fastest, then dh, dt, c.
    if (++dw == p.kw) {
      dw = 0;
      if (++dh == p.kh) {
        dh = 0;
        if (++dt == p.kt) {
          dt = 0;
          ++c;
        }
      }
    }
  }
}

// B tile rows o0 .. o0 + 64, k0 .. k0 + 32: 256 chunks of 8 elements, 2 per thread, by cp.async.
// Rows past O read nothing (zero-filled) from a valid address.
template <typename T>
LF_DEVICE void issue_b(const CausalConv3dParams& p, int64_t o0, int64_t k0, T* sB) {
  const T* w = static_cast<const T*>(p.weight);
  const int tid = static_cast<int>(threadIdx.x);
  LF_UNROLL
  for (int i = 0; i < 2; ++i) {
    const int chunk = tid + i * kThreads;
    const int row = chunk / (kBlockK / 8), col = (chunk % (kBlockK / 8)) * 8;
    const bool in = o0 + row < p.o;
    const T* src = in ? w + (o0 + row) * p.weight_row_stride + k0 + col : w;
    lf::cp_async<16>(sB + row * kPitch + col, src, in ? 16 : 0);
  }
}

template <typename T>
LF_GLOBAL void LF_LAUNCH_BOUNDS(kThreads) causal_conv3d_fwd_kernel(CausalConv3dParams p) {
  T* smem = lf::dynamic_smem<T>();
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = lf::lane_id(), warp = lf::warp_id();
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * kBlockM;
  const int64_t o0 = static_cast<int64_t>(blockIdx.y) * kBlockN;
  const int64_t k_total = p.c * p.kt * p.kh * p.kw;
  const int num_k = static_cast<int>((k_total + kBlockK - 1) / kBlockK);

  // This thread's A row and k half.
  const int a_row = tid % kBlockM, a_half = tid / kBlockM;
  const RowCoord rc = decode_row(p, m0 + a_row);

  auto sA = [&](int stage) { return smem + stage * kStageElems; };
  auto sB = [&](int stage) { return smem + stage * kStageElems + kBlockM * kPitch; };
  auto store_a = [&](int stage, const T (&v)[kAPerThread]) {
    T* dst = sA(stage) + a_row * kPitch + a_half * kAPerThread;
    LF_UNROLL
    for (int i = 0; i < kAPerThread; ++i) dst[i] = v[i];
  };

  float acc[2][4][4];
  LF_UNROLL
  for (int i = 0; i < 2; ++i) {
    LF_UNROLL
    for (int j = 0; j < 4; ++j) {
      LF_UNROLL
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
    }
  }

  // Stage 0.
  T a_regs[kAPerThread];
  gather_a<T>(p, rc, a_half * kAPerThread, k_total, a_regs);
  store_a(0, a_regs);
  issue_b<T>(p, o0, 0, sB(0));
  lf::cp_async_commit();

  const int wm = warp / 2, wn = warp % 2;  // this warp's 32 x 32 quarter of the block tile
  for (int kb = 0; kb < num_k; ++kb) {
    const int cur = kb & 1, nxt = cur ^ 1;
    const bool more = kb + 1 < num_k;
    if (more) {
      // The next stage's loads fly while this one computes. sB(nxt) was last read before the
      // barrier that ended the previous iteration.
      gather_a<T>(p, rc, static_cast<int64_t>(kb + 1) * kBlockK + a_half * kAPerThread, k_total, a_regs);
      issue_b<T>(p, o0, static_cast<int64_t>(kb + 1) * kBlockK, sB(nxt));
    }
    lf::cp_async_commit();  // possibly empty: keeps "all but the newest group" = this stage's
    lf::cp_async_wait<1>();
    lf::syncthreads();

    const T* a_tile = sA(cur);
    const T* b_tile = sB(cur);
    LF_UNROLL
    for (int ks = 0; ks < kBlockK; ks += 16) {
      uint32_t a_frag[2][4], b_frag[4][2];
      LF_UNROLL
      for (int i = 0; i < 2; ++i) {
        lf::ldmatrix_x4(a_frag[i], a_tile + (wm * 32 + i * 16 + lane % 16) * kPitch + ks + 8 * (lane / 16));
      }
      LF_UNROLL
      for (int j = 0; j < 4; ++j) {
        lf::ldmatrix_x2(b_frag[j], b_tile + (wn * 32 + j * 8 + lane % 8) * kPitch + ks + 8 * ((lane / 8) % 2));
      }
      LF_UNROLL
      for (int i = 0; i < 2; ++i) {
        LF_UNROLL
        for (int j = 0; j < 4; ++j) lf::mma_m16n8k16<T>(acc[i][j], a_frag[i], b_frag[j], acc[i][j]);
      }
    }
    lf::syncthreads();  // every warp is done with stage cur before it is refilled
    if (more) store_a(nxt, a_regs);
  }

  // Epilogue: + bias, round, scatter. Accumulator (i, j, e): row wm*32 + i*16 + lane/4 + 8*(e/2),
  // column wn*32 + j*8 + 2*(lane%4) + e%2.
  const T* bias = static_cast<const T*>(p.bias);
  T* y = static_cast<T*>(p.y);
  LF_UNROLL
  for (int i = 0; i < 2; ++i) {
    LF_UNROLL
    for (int half = 0; half < 2; ++half) {
      const int64_t m = m0 + wm * 32 + i * 16 + lane / 4 + 8 * half;
      if (m >= p.n * p.t_out * p.h_out * p.w_out) continue;
      const int64_t wo = m % p.w_out;
      int64_t q = m / p.w_out;
      const int64_t ho = q % p.h_out;
      q /= p.h_out;
      const int64_t to = q % p.t_out, n = q / p.t_out;
      T* y_row = y + n * p.y_n_stride + to * p.y_t_stride + ho * p.y_h_stride + wo * p.y_w_stride;
      LF_UNROLL
      for (int j = 0; j < 4; ++j) {
        LF_UNROLL
        for (int e = 0; e < 2; ++e) {
          const int64_t o = o0 + wn * 32 + j * 8 + 2 * (lane % 4) + e;
          if (o >= p.o) continue;
          const float b = bias ? lf::to_float(bias[o]) : 0.f;
          y_row[o * p.y_o_stride] = lf::from_float<T>(acc[i][j][2 * half + e] + b);
        }
      }
    }
  }
}

}  // namespace lavin_fast::conv_kernels
