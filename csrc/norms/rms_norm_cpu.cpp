// Picks the instruction-set variant of the CPU kernels (rms_norm_cpu_kernel.cpp, compiled per ISA).
#include "norms/rms_norm_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

extern const RmsNormCpuKernels kRmsNormCpuKernels_DEFAULT;
#ifdef LAVIN_FAST_CPU_AVX2
extern const RmsNormCpuKernels kRmsNormCpuKernels_AVX2;
#endif
#ifdef LAVIN_FAST_CPU_AVX512
extern const RmsNormCpuKernels kRmsNormCpuKernels_AVX512;
#endif

namespace {
const RmsNormCpuKernels& kernels() {
  static const RmsNormCpuKernels& k = select_isa<RmsNormCpuKernels>(
      kRmsNormCpuKernels_DEFAULT,
#ifdef LAVIN_FAST_CPU_AVX2
      &kRmsNormCpuKernels_AVX2,
#else
      nullptr,
#endif
#ifdef LAVIN_FAST_CPU_AVX512
      &kRmsNormCpuKernels_AVX512
#else
      nullptr
#endif
  );
  return k;
}
}  // namespace

void rms_norm_fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) { kernels().fwd(p, dtype); }
void rms_norm_bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) { kernels().bwd(p, dtype); }

}  // namespace lavin_fast::cpu
