// Picks the instruction-set variant of the CPU attention kernels (attention_cpu_kernel.cpp, compiled
// per ISA).
#include "attention/attention_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

extern const AttentionCpuKernels kAttentionCpuKernels_DEFAULT, kAttentionCpuKernels_AVX2, kAttentionCpuKernels_AVX512;

namespace {
const AttentionCpuKernels& kernels() {
  static const AttentionCpuKernels& k = LAVIN_FAST_SELECT_ISA(kAttentionCpuKernels);
  return k;
}
}  // namespace

void varlen_attention_fwd(const VarlenAttentionFwdParams& p) { kernels().fwd(p); }
int64_t varlen_attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p) {
  return static_cast<int64_t>(p.num_heads) * p.total_q;
}
void varlen_attention_bwd(const VarlenAttentionBwdParams& p) { kernels().bwd(p); }

}  // namespace lavin_fast::cpu
