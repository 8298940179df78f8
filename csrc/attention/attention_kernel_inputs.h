// For the simt and CUDA backends: the tensor-core kernels copy 16-byte rows with cp.async, so q, k, v
// and grad_out whose rows are not 16-byte aligned (a view into a fused qkv projection with an odd
// offset, say) are first copied into contiguous tensors. The host API admits any row and head stride.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "attention/attention_params.h"

namespace lavin_fast::attention {

inline bool rows_aligned16(const void* ptr, int64_t row_stride, int64_t head_stride) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && row_stride % 8 == 0 && head_stride % 8 == 0;
}

// Re-points (ptr, strides) at a contiguous copy when its rows are misaligned; the copy is kept in `keep`.
inline void align_rows(const void*& ptr, int64_t& row_stride, int64_t& head_stride, int64_t rows, int64_t heads,
                       int64_t dim, ElemType dtype, at::Device device, std::vector<at::Tensor>& keep) {
  if (ptr == nullptr || rows == 0 || rows_aligned16(ptr, row_stride, head_stride)) return;
  const auto st = dtype == ElemType::kBFloat16 ? at::kBFloat16 : at::kHalf;
  at::Tensor view = at::from_blob(const_cast<void*>(ptr), {rows, heads, dim}, {row_stride, head_stride, 1},
                                  at::TensorOptions().dtype(st).device(device));
  // clone, not contiguous(): a contiguous view at a misaligned offset (storage offset 1) would come back as is
  keep.push_back(view.clone(at::MemoryFormat::Contiguous));
  ptr = keep.back().data_ptr();
  row_stride = heads * dim;
  head_stride = dim;
}

inline std::vector<at::Tensor> align_inputs(VarlenAttentionFwdParams& p, at::Device device) {
  // The CUDA kernels mask a score to -inf before scaling it inside one FMA: a scale <= 0 would turn
  // masked scores into NaN or +inf (0 * -inf, -c * -inf). The CPU kernels take any finite scale.
  TORCH_CHECK_VALUE(p.softmax_scale > 0.f, "lavin_fast.varlen_attention: argument 'softmax_scale' must be > 0 "
                    "on the CUDA kernels, got ", p.softmax_scale);
  std::vector<at::Tensor> keep;
  align_rows(p.q, p.q_row_stride, p.q_head_stride, p.total_q, p.num_heads, p.head_dim, p.dtype, device, keep);
  align_rows(p.k, p.k_row_stride, p.k_head_stride, p.total_k, p.num_kv_heads, p.head_dim, p.dtype, device, keep);
  align_rows(p.v, p.v_row_stride, p.v_head_stride, p.total_k, p.num_kv_heads, p.head_dim, p.dtype, device, keep);
  return keep;
}

inline std::vector<at::Tensor> align_inputs(VarlenAttentionBwdParams& p, at::Device device) {
  std::vector<at::Tensor> keep = align_inputs(static_cast<VarlenAttentionFwdParams&>(p), device);
  align_rows(p.grad_out, p.grad_out_row_stride, p.grad_out_head_stride, p.total_q, p.num_heads, p.head_dim,
             p.dtype, device, keep);
  return keep;
}

}  // namespace lavin_fast::attention
