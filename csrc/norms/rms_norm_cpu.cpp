// Picks the instruction-set variant of the CPU kernels (rms_norm_cpu_kernel.cpp, compiled per ISA).
#include "norms/rms_norm_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

LAVIN_FAST_ISA_TABLE_GETTER(RmsNormCpuKernels, kRmsNormCpuKernels, kernels)

void rms_norm_fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) { kernels().fwd(p, dtype); }
void rms_norm_bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) { kernels().bwd(p, dtype); }

}  // namespace lavin_fast::cpu
