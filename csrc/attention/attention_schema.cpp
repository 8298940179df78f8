// Schemas of varlen attention (the contract in csrc/attention/attention_params.h). Kernels register
// per dispatch key: attention_cpu_register.cpp (CPU, or simt under the emulator), attention_cuda.cpp.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  // q (total_q, H, D), k/v (total_k, H_kv, D), cu_seqlens int32 (S + 1,)  ->  out (total_q, H, D),
  // lse (H, total_q) fp32, lse_residual (H, total_q) fp32 (log-sum-exp - lse: what the backward needs
  // beyond lse's precision; attention_params.h). tile_mask bool (S, ceil(max_seqlen_q / tile_q),
  // ceil(max_seqlen_k / tile_k)); frame ids int32 (total_q,), (total_k,), both or neither.
  // max_seqlen_q/k vary per batch: SymInt, so torch.compile keeps them symbolic (an int would
  // specialise the graph on each value); the kernels take them as int64_t (the dispatcher passes
  // concrete values to real kernels).
  m.def(
      "varlen_attention(Tensor q, Tensor k, Tensor v, Tensor cu_seqlens_q, Tensor cu_seqlens_k, "
      "SymInt max_seqlen_q, SymInt max_seqlen_k, float softmax_scale, bool causal, Tensor? frame_ids_q, "
      "Tensor? frame_ids_k, Tensor? tile_mask, int tile_q, int tile_k) -> (Tensor, Tensor, Tensor)");
  // -> grad_q, grad_k, grad_v (dtypes and shapes of q, k, v)
  m.def(
      "varlen_attention_backward(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor out, "
      "Tensor lse, Tensor? lse_residual, Tensor cu_seqlens_q, Tensor cu_seqlens_k, SymInt max_seqlen_q, "
      "SymInt max_seqlen_k, "
      "float softmax_scale, bool causal, Tensor? frame_ids_q, Tensor? frame_ids_k, "
      "Tensor? tile_mask, int tile_q, int tile_k, bool deterministic) -> (Tensor, Tensor, Tensor)");
}
