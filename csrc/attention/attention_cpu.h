// Entry points of the CPU attention kernels. attention_cpu_kernel.cpp is compiled once per
// instruction set (setup.py / CMakeLists.txt); these functions pick the variant the CPU supports.
#pragma once

#include <cstdint>

#include "attention/attention_params.h"

namespace lavin_fast::cpu {

void varlen_attention_fwd(const VarlenAttentionFwdParams& p);
// fp32 floats of scratch the backward needs: delta = rowsum(dO * O), (H, total_q).
int64_t varlen_attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p);
void varlen_attention_bwd(const VarlenAttentionBwdParams& p);

// One table per instruction-set variant of attention_cpu_kernel.cpp.
struct AttentionCpuKernels {
  void (*fwd)(const VarlenAttentionFwdParams&);
  void (*bwd)(const VarlenAttentionBwdParams&);
};

}  // namespace lavin_fast::cpu
