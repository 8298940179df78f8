// What the attention kernels take and the workspace their backward needs: host code, torch-free and
// kernel-free, so that the launch logic (attention_launch.h), the kernels, and the CUDA and simt backends'
// tables (attention_register.cpp) all read the same functions.
#pragma once

#include <cstdint>
#include <string>

#include "attention/attention_params.h"

namespace lavin_fast::attention_kernels {

constexpr int64_t kMaxGridYZ = 65535;

// nullptr when the kernels take (dtype, head_dim, query heads), else what they take. Heads index grid
// y (at most 65535); segments, which index grid z, have no limit (launched in chunks).
inline const char* unsupported(ElemType dtype, int head_dim, int64_t num_heads) {
  if (dtype != ElemType::kBFloat16 && dtype != ElemType::kFloat16)
    return "the CUDA attention kernels take bfloat16 or float16 q, k, v";
  if (!CudaHeadDims::contains(head_dim)) {
    static const std::string kTakes = "the CUDA attention kernels take head_dim " + spell_or(CudaHeadDims{});
    return kTakes.c_str();
  }
  if (num_heads > kMaxGridYZ) return "the CUDA attention kernels take at most 65535 query heads (grid y)";
  return nullptr;
}

// Workspace (fp32): delta (H, total_q), then in atomic mode the dQ accumulator (total_q, H, D).
// constexpr: the kernels call it too (nvcc --expt-relaxed-constexpr).
constexpr int64_t bwd_delta_floats(const VarlenAttentionBwdParams& p) {
  return static_cast<int64_t>(p.num_heads) * p.total_q;
}
inline int64_t bwd_workspace_floats_for(const VarlenAttentionBwdParams& p) {
  return bwd_delta_floats(p) + (p.deterministic ? 0 : p.total_q * p.num_heads * p.head_dim);
}

}  // namespace lavin_fast::attention_kernels
