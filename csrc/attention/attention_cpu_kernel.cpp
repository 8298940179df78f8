// CPU kernels of varlen attention (first version: straightforward per-row loops, fp32 compute).
// Compiled once per instruction set with CPU_CAPABILITY = DEFAULT / AVX2 / AVX512.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <limits>
#include <vector>

#include "attention/attention_cpu.h"

#ifndef CPU_CAPABILITY
#error "attention_cpu_kernel.cpp is compiled with -DCPU_CAPABILITY=<DEFAULT|AVX2|AVX512>"
#endif

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Seg {
  int64_t q0, lq, k0, lk;
};

Seg segment(const VarlenAttentionFwdParams& p, int s) {
  return {p.cu_seqlens_q[s], p.cu_seqlens_q[s + 1] - p.cu_seqlens_q[s], p.cu_seqlens_k[s],
          p.cu_seqlens_k[s + 1] - p.cu_seqlens_k[s]};
}

// Whether query i of segment s may see key j (both relative to the segment).
bool visible(const AttentionMask& m, int s, const Seg& g, int64_t i, int64_t j) {
  if (m.causal && j > i + (g.lk - g.lq)) return false;
  if (m.frame_q && m.frame_k[g.k0 + j] > m.frame_q[g.q0 + i]) return false;
  if (m.tile_mask &&
      !m.tile_mask[(static_cast<int64_t>(s) * m.n_tiles_q + i / m.tile_q) * m.n_tiles_k + j / m.tile_k])
    return false;
  return true;
}

template <typename T>
void to_f32(const T* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(x[i]);
}

template <typename T>
void fwd_typed(const VarlenAttentionFwdParams& p) {
  const int H = p.num_heads, G = p.num_heads / p.num_kv_heads, D = p.head_dim;
  const int64_t items = static_cast<int64_t>(p.num_segments) * H;
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(D), kf(D), acc(D), sc;
    for (int64_t it = begin; it < end; ++it) {
      const int s = static_cast<int>(it / H), h = static_cast<int>(it % H), hk = h / G;
      const Seg g = segment(p, s);
      sc.resize(g.lk);
      for (int64_t i = 0; i < g.lq; ++i) {
        const int64_t row = g.q0 + i;
        to_f32(static_cast<const T*>(p.q) + row * p.q_row_stride + h * p.q_head_stride, D, qf.data());
        float mx = kNegInf;
        for (int64_t j = 0; j < g.lk; ++j) {
          if (!visible(p.mask, s, g, i, j)) {
            sc[j] = kNegInf;
            continue;
          }
          to_f32(static_cast<const T*>(p.k) + (g.k0 + j) * p.k_row_stride + hk * p.k_head_stride, D,
                 kf.data());
          float dot = 0.f;
          for (int d = 0; d < D; ++d) dot += qf[d] * kf[d];
          sc[j] = dot * p.softmax_scale;
          mx = std::max(mx, sc[j]);
        }
        std::fill(acc.begin(), acc.end(), 0.f);
        float sum = 0.f;
        if (mx != kNegInf) {
          for (int64_t j = 0; j < g.lk; ++j) {
            if (sc[j] == kNegInf) continue;
            const float e = std::exp(sc[j] - mx);
            sum += e;
            to_f32(static_cast<const T*>(p.v) + (g.k0 + j) * p.v_row_stride + hk * p.v_head_stride, D,
                   kf.data());
            for (int d = 0; d < D; ++d) acc[d] += e * kf[d];
          }
        }
        T* o = static_cast<T*>(p.out) + (row * H + h) * D;
        const float inv = sum > 0.f ? 1.f / sum : 0.f;
        for (int d = 0; d < D; ++d) o[d] = static_cast<T>(acc[d] * inv);
        p.lse[static_cast<int64_t>(h) * p.total_q + row] = sum > 0.f ? mx + std::log(sum) : kNegInf;
      }
    }
  });
}

template <typename T>
void bwd_typed(const VarlenAttentionBwdParams& p) {
  const int H = p.num_heads, Hk = p.num_kv_heads, G = H / Hk, D = p.head_dim;
  float* delta = p.workspace;  // (H, total_q)
  at::parallel_for(0, p.total_q, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row)
      for (int h = 0; h < H; ++h) {
        const T* go = static_cast<const T*>(p.grad_out) + row * p.grad_out_row_stride +
                      h * p.grad_out_head_stride;
        const T* o = static_cast<const T*>(p.out) + (row * H + h) * D;
        float acc = 0.f;
        for (int d = 0; d < D; ++d) acc += static_cast<float>(go[d]) * static_cast<float>(o[d]);
        delta[static_cast<int64_t>(h) * p.total_q + row] = acc;
      }
  });
  const int64_t items = static_cast<int64_t>(p.num_segments) * Hk;
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(D), kf(D), vf(D), gof(D), dq(D), dk, dv;
    for (int64_t it = begin; it < end; ++it) {
      const int s = static_cast<int>(it / Hk), hk = static_cast<int>(it % Hk);
      const Seg g = segment(p, s);
      dk.assign(g.lk * D, 0.f);
      dv.assign(g.lk * D, 0.f);
      for (int h = hk * G; h < (hk + 1) * G; ++h) {
        for (int64_t i = 0; i < g.lq; ++i) {
          const int64_t row = g.q0 + i;
          const float lse = p.lse[static_cast<int64_t>(h) * p.total_q + row];
          const float dl = delta[static_cast<int64_t>(h) * p.total_q + row];
          to_f32(static_cast<const T*>(p.q) + row * p.q_row_stride + h * p.q_head_stride, D, qf.data());
          to_f32(static_cast<const T*>(p.grad_out) + row * p.grad_out_row_stride +
                     h * p.grad_out_head_stride, D, gof.data());
          std::fill(dq.begin(), dq.end(), 0.f);
          if (lse != kNegInf) {
            for (int64_t j = 0; j < g.lk; ++j) {
              if (!visible(p.mask, s, g, i, j)) continue;
              to_f32(static_cast<const T*>(p.k) + (g.k0 + j) * p.k_row_stride + hk * p.k_head_stride,
                     D, kf.data());
              to_f32(static_cast<const T*>(p.v) + (g.k0 + j) * p.v_row_stride + hk * p.v_head_stride,
                     D, vf.data());
              float dot = 0.f, dp = 0.f;
              for (int d = 0; d < D; ++d) {
                dot += qf[d] * kf[d];
                dp += gof[d] * vf[d];
              }
              const float pr = std::exp(dot * p.softmax_scale - lse);
              const float ds = pr * (dp - dl) * p.softmax_scale;
              for (int d = 0; d < D; ++d) {
                dq[d] += ds * kf[d];
                dk[j * D + d] += ds * qf[d];
                dv[j * D + d] += pr * gof[d];
              }
            }
          }
          T* gq = static_cast<T*>(p.grad_q) + (row * H + h) * D;
          for (int d = 0; d < D; ++d) gq[d] = static_cast<T>(dq[d]);
        }
      }
      T* gk = static_cast<T*>(p.grad_k) + (g.k0 * Hk + hk) * D;
      T* gv = static_cast<T*>(p.grad_v) + (g.k0 * Hk + hk) * D;
      for (int64_t j = 0; j < g.lk; ++j)
        for (int d = 0; d < D; ++d) {
          gk[j * Hk * D + d] = static_cast<T>(dk[j * D + d]);
          gv[j * Hk * D + d] = static_cast<T>(dv[j * D + d]);
        }
    }
  });
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
