// Picks the instruction-set variant of the CPU attention kernels (attention_cpu_kernel.cpp, compiled
// per ISA).
#include "attention/attention_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

extern const AttentionCpuKernels kAttentionCpuKernels_DEFAULT;
#ifdef LAVIN_FAST_CPU_AVX2
extern const AttentionCpuKernels kAttentionCpuKernels_AVX2;
#endif
#ifdef LAVIN_FAST_CPU_AVX512
extern const AttentionCpuKernels kAttentionCpuKernels_AVX512;
#endif

namespace {
const AttentionCpuKernels& kernels() {
  static const AttentionCpuKernels& k = select_isa<AttentionCpuKernels>(
      kAttentionCpuKernels_DEFAULT,
#ifdef LAVIN_FAST_CPU_AVX2
      &kAttentionCpuKernels_AVX2,
#else
      nullptr,
#endif
#ifdef LAVIN_FAST_CPU_AVX512
      &kAttentionCpuKernels_AVX512
#else
      nullptr
#endif
  );
  return k;
}
}  // namespace

void varlen_attention_fwd(const VarlenAttentionFwdParams& p) { kernels().fwd(p); }
int64_t varlen_attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p) {
  return static_cast<int64_t>(p.num_heads) * p.total_q;
}
void varlen_attention_bwd(const VarlenAttentionBwdParams& p) { kernels().bwd(p); }

}  // namespace lavin_fast::cpu
