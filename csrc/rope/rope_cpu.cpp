// Picks the instruction-set variant of the CPU kernels (rope_cpu_kernel.cpp, compiled per ISA).
#include "rope/rope_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

extern const RopeCpuKernels kRopeCpuKernels_DEFAULT, kRopeCpuKernels_AVX2, kRopeCpuKernels_AVX512;

namespace {
const RopeCpuKernels& kernels() {
  static const RopeCpuKernels& k = LAVIN_FAST_SELECT_ISA(kRopeCpuKernels);
  return k;
}
}  // namespace

void qk_norm_rope_fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) { kernels().fwd(p, dtype); }
void qk_norm_rope_bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) { kernels().bwd(p, dtype); }

}  // namespace lavin_fast::cpu
