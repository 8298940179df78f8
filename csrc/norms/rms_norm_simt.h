// The simt backend of the RMSNorm family: the CUDA kernels under the SIMT emulator, on CPU tensors.
// The CPU registrations (rms_norm_cpu_register.cpp) use it while lf::emu::mode() says so.
#pragma once

#include "norms/rms_norm_api.h"

namespace lavin_fast::norms {

const Backend& simt_backend();

}  // namespace lavin_fast::norms
