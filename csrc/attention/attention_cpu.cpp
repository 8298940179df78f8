// Picks the instruction-set variant of the CPU attention kernels (attention_cpu_kernel.cpp, compiled
// per ISA).
#include "attention/attention_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

LAVIN_FAST_ISA_TABLE_GETTER(AttentionCpuKernels, kAttentionCpuKernels, kernels)

void varlen_attention_fwd(const VarlenAttentionFwdParams& p) { kernels().fwd(p); }
int64_t varlen_attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p) {
  return static_cast<int64_t>(p.num_heads) * p.total_q;
}
void varlen_attention_bwd(const VarlenAttentionBwdParams& p) { kernels().bwd(p); }

}  // namespace lavin_fast::cpu
