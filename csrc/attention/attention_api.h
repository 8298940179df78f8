// Host side of varlen attention, shared by the CPU, simt and CUDA registrations: every argument
// check (before any output exists), output allocation, the params struct, and the call into a
// backend's kernels. Backends trust their params.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <tuple>

#include "attention/attention_params.h"

namespace lavin_fast::attention {

struct Backend {
  const char* name;           // "cpu", "cuda", "simt"
  bool validates_cu_seqlens;  // CPU tensors: values checked on the host; CUDA: shape/dtype only
  // nullptr if (dtype, head_dim, number of query heads) is supported, else a message naming what
  // is supported, e.g. "head_dim must be one of 64, 72, 128 on CUDA (got 80)".
  const char* (*unsupported)(ElemType dtype, int head_dim, int64_t num_heads);
  bool writes_lse_residual;   // fwd writes params.lse_residual (else the host zero-fills it)
  void (*fwd)(const VarlenAttentionFwdParams&);
  int64_t (*bwd_workspace_floats)(const VarlenAttentionBwdParams&);  // host allocates, zero-filled
  void (*bwd)(const VarlenAttentionBwdParams&);
};


// q (total_q, H, D), k/v (total_k, H_kv, D), cu_seqlens_q/k int32 (S + 1,), frame ids int32
// (total_q,)/(total_k,), tile_mask bool (S, ceil(max_seqlen_q / tile_q), ceil(max_seqlen_k / tile_k))
//   ->  out (total_q, H, D) in q's dtype, lse and lse_residual (H, total_q) fp32
std::tuple<at::Tensor, at::Tensor, at::Tensor> varlen_attention(
    const Backend& be, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& cu_seqlens_q, const at::Tensor& cu_seqlens_k, int64_t max_seqlen_q,
    int64_t max_seqlen_k, double softmax_scale, bool causal,
    const std::optional<at::Tensor>& frame_ids_q, const std::optional<at::Tensor>& frame_ids_k,
    const std::optional<at::Tensor>& tile_mask, int64_t tile_q, int64_t tile_k);

// grad_out/out like q, lse and lse_residual (optional) (H, total_q) fp32  ->  grad_q, grad_k, grad_v
std::tuple<at::Tensor, at::Tensor, at::Tensor> varlen_attention_backward(
    const Backend& be, const at::Tensor& grad_out, const at::Tensor& q, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse,
    const std::optional<at::Tensor>& lse_residual, const at::Tensor& cu_seqlens_q,
    const at::Tensor& cu_seqlens_k, int64_t max_seqlen_q, int64_t max_seqlen_k, double softmax_scale,
    bool causal, const std::optional<at::Tensor>& frame_ids_q,
    const std::optional<at::Tensor>& frame_ids_k, const std::optional<at::Tensor>& tile_mask,
    int64_t tile_q, int64_t tile_k, bool deterministic);

}  // namespace lavin_fast::attention
