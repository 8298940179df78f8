// Entry points of the CPU kernels of the fused QK RMSNorm + 3-D RoPE op. rope_cpu_kernel.cpp is
// compiled once per instruction set (setup.py / CMakeLists.txt); these functions pick the variant the
// CPU supports.
#pragma once

#include <c10/core/ScalarType.h>

#include "rope/rope_params.h"

namespace lavin_fast::cpu {

void qk_norm_rope_fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype);
void qk_norm_rope_bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype);

// One table per instruction-set variant of rope_cpu_kernel.cpp.
struct RopeCpuKernels {
  void (*fwd)(const QkNormRopeFwdParams&, c10::ScalarType);
  void (*bwd)(const QkNormRopeBwdParams&, c10::ScalarType);
};

}  // namespace lavin_fast::cpu
