// Picks the instruction-set variant of the CPU kernels (rope_cpu_kernel.cpp, compiled per ISA).
#include "rope/rope_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

LAVIN_FAST_ISA_TABLE_GETTER(RopeCpuKernels, kRopeCpuKernels, kernels)

void qk_norm_rope_fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) { kernels().fwd(p, dtype); }
void qk_norm_rope_bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) { kernels().bwd(p, dtype); }

}  // namespace lavin_fast::cpu
