// Entry points of the CPU kernels of the RMSNorm family. rms_norm_cpu_kernel.cpp is compiled once per
// instruction set (setup.py / CMakeLists.txt); these functions pick the variant the CPU supports.
#pragma once

#include <c10/core/ScalarType.h>

#include "norms/norm_params.h"

namespace lavin_fast::cpu {

void rms_norm_fwd(const RmsNormFwdParams& p, c10::ScalarType dtype);
void rms_norm_bwd(const RmsNormBwdParams& p, c10::ScalarType dtype);

// One table per instruction-set variant of rms_norm_cpu_kernel.cpp.
struct RmsNormCpuKernels {
  void (*fwd)(const RmsNormFwdParams&, c10::ScalarType);
  void (*bwd)(const RmsNormBwdParams&, c10::ScalarType);
};

}  // namespace lavin_fast::cpu
