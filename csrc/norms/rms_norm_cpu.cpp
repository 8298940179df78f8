// Picks the instruction-set variant of the CPU kernels (rms_norm_cpu_kernel.cpp, compiled per ISA).
#include "norms/rms_norm_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

extern const RmsNormCpuKernels kRmsNormCpuKernels_DEFAULT, kRmsNormCpuKernels_AVX2, kRmsNormCpuKernels_AVX512;

namespace {
const RmsNormCpuKernels& kernels() {
  static const RmsNormCpuKernels& k = LAVIN_FAST_SELECT_ISA(kRmsNormCpuKernels);
  return k;
}
}  // namespace

void rms_norm_fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) { kernels().fwd(p, dtype); }
void rms_norm_bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) { kernels().bwd(p, dtype); }

}  // namespace lavin_fast::cpu
