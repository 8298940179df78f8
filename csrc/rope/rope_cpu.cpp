// Picks the instruction-set variant of the CPU kernels (rope_cpu_kernel.cpp, compiled per ISA).
#include "rope/rope_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

extern const RopeCpuKernels kRopeCpuKernels_DEFAULT;
#ifdef LAVIN_FAST_CPU_AVX2
extern const RopeCpuKernels kRopeCpuKernels_AVX2;
#endif
#ifdef LAVIN_FAST_CPU_AVX512
extern const RopeCpuKernels kRopeCpuKernels_AVX512;
#endif

namespace {
const RopeCpuKernels& kernels() {
  static const RopeCpuKernels& k = select_isa<RopeCpuKernels>(
      kRopeCpuKernels_DEFAULT,
#ifdef LAVIN_FAST_CPU_AVX2
      &kRopeCpuKernels_AVX2,
#else
      nullptr,
#endif
#ifdef LAVIN_FAST_CPU_AVX512
      &kRopeCpuKernels_AVX512
#else
      nullptr
#endif
  );
  return k;
}
}  // namespace

void qk_norm_rope_fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) { kernels().fwd(p, dtype); }
void qk_norm_rope_bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) { kernels().bwd(p, dtype); }

}  // namespace lavin_fast::cpu
