// Picks the instruction-set variant of the batched transpose (transpose_cpu_kernel.cpp, compiled per ISA).
#include "common/transpose_cpu.h"

#include "common/cpu_isa.h"

namespace lavin_fast::cpu {

LAVIN_FAST_ISA_TABLE_GETTER(TransposeCpuKernels, kTransposeCpuKernels, kernels)

void transpose_batched(const TransposeParams& p) { kernels().batched(p); }

}  // namespace lavin_fast::cpu
