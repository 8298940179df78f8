// Picks the instruction-set variant of the batched transpose (transpose_cpu_kernel.cpp, compiled per ISA).
#include "common/transpose_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

extern const TransposeCpuKernels kTransposeCpuKernels_DEFAULT, kTransposeCpuKernels_AVX2,
    kTransposeCpuKernels_AVX512;

void transpose_batched(const TransposeParams& p) {
  static const TransposeCpuKernels& k = LAVIN_FAST_SELECT_ISA(kTransposeCpuKernels);
  k.batched(p);
}

}  // namespace lavin_fast::cpu
