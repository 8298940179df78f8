// The simt backend of qk_norm_rope: the CUDA kernels under the SIMT emulator, on CPU tensors. The CPU
// registrations (rope_cpu_register.cpp) use it while lf::emu::mode() says so.
#pragma once

#include "rope/rope_api.h"

namespace lavin_fast::rope {

const Backend& simt_backend();

}  // namespace lavin_fast::rope
