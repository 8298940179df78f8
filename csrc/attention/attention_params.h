// Plain parameter structs of varlen attention, shared by the host API, the CPU kernels, the CUDA
// launchers and the portable device code: no torch headers here.
//
// Packed layout (FlashAttention's varlen convention): q (total_q, H, D), k/v (total_k, H_kv, D),
// segment s owns query rows [cu_q[s], cu_q[s+1]) and key rows [cu_k[s], cu_k[s+1]); query head h reads
// KV head h / (H / H_kv). Within segment s, query i (0-based in the segment) may see key j when ALL
// of the enabled masks allow it:
//   causal       j <= i + (len_k - len_q)                    (bottom-right aligned, as FlashAttention)
//   frames       frame_k[cu_k[s] + j] <= frame_q[cu_q[s] + i] (block-causal by frame or chunk index)
//   tile mask    tile_mask[s, i / tile_q, j / tile_k] != 0   (block-sparse, tile indices per segment)
// Scores are softmax_scale * q.k in fp32. lse[h, row] = log(sum_j exp(score)) (natural log); a row
// that sees no key gets out = 0 and lse = -inf, and contributes nothing to any gradient.
// lse_residual = log-sum-exp - lse, the part that lse's fp32 rounding drops: one ulp of a score near
// 1e4 is 1e-3, which would put every recomputed P of a sharp softmax off by 1e-3.
// The backward computes P = exp((score - lse) - lse_residual).
// Strides are in elements; the last dimension (D) is contiguous.
#pragma once

#include <cstdint>

#include "common/elem_type.h"
#include "common/static_switch.h"

namespace lavin_fast {

// The head dims the CUDA kernels (and so the simt backend) are compiled for, one attention_cuda_hd<D>.cu
// each: every switch, instantiation and message takes them from here.
using CudaHeadDims = IntList<64, 72, 128>;

struct AttentionMask {
  bool causal = false;
  const int32_t* frame_q = nullptr;  // (total_q,) or null: no frame mask
  const int32_t* frame_k = nullptr;  // (total_k,), set together with frame_q
  const uint8_t* tile_mask = nullptr;  // (num_segments, n_tiles_q, n_tiles_k) contiguous bool, or null
  int tile_q = 0, tile_k = 0;          // tokens per mask tile (query side, key side)
  int n_tiles_q = 0, n_tiles_k = 0;    // ceil(max_seqlen_q / tile_q), ceil(max_seqlen_k / tile_k)
};

struct VarlenAttentionFwdParams {
  ElemType dtype = ElemType::kFloat32;  // of q, k, v, out
  int num_segments = 0;
  int64_t total_q = 0, total_k = 0;
  int max_seqlen_q = 0, max_seqlen_k = 0;  // bounds checked by the host against cu_seqlens (CPU)
  int num_heads = 0, num_kv_heads = 0, head_dim = 0;
  float softmax_scale = 0.f;
  const int32_t* cu_seqlens_q = nullptr;  // (num_segments + 1,) on the kernel's device
  const int32_t* cu_seqlens_k = nullptr;
  AttentionMask mask;

  const void* q = nullptr;
  int64_t q_row_stride = 0, q_head_stride = 0;
  const void* k = nullptr;
  int64_t k_row_stride = 0, k_head_stride = 0;
  const void* v = nullptr;
  int64_t v_row_stride = 0, v_head_stride = 0;

  void* out = nullptr;  // (total_q, H, D) contiguous
  float* lse = nullptr;  // (H, total_q) contiguous fp32
  // (H, total_q) contiguous fp32; null: the backend does not compute it (the host writes zeros) or,
  // in the backward, none was given (taken as zero).
  float* lse_residual = nullptr;
};

// dS = P * (dP - delta), delta[h, row] = sum_d dout * out (computed by the kernels or the host).
struct VarlenAttentionBwdParams : VarlenAttentionFwdParams {
  const void* grad_out = nullptr;  // (total_q, H, D)
  int64_t grad_out_row_stride = 0, grad_out_head_stride = 0;
  // out, lse and lse_residual of the forward are the inherited fields (read only here).
  void* grad_q = nullptr;  // (total_q, H, D) contiguous, dtype
  void* grad_k = nullptr;  // (total_k, H_kv, D) contiguous, dtype
  void* grad_v = nullptr;  // (total_k, H_kv, D) contiguous, dtype
  // Bitwise reproducible gradients (no float atomics whose order depends on scheduling).
  bool deterministic = false;
  // Scratch the host allocates for the backend (fp32, sizes from the backend's workspace query);
  // null when the backend asked for none.
  float* workspace = nullptr;
  int64_t workspace_floats = 0;
};

}  // namespace lavin_fast
