// The simt backend of varlen attention: the CUDA kernels under the SIMT emulator, on CPU tensors. The
// CPU registrations (attention_cpu_register.cpp) use it while lf::emu::mode() says so.
#pragma once

#include "attention/attention_api.h"

namespace lavin_fast::attention {

const Backend& simt_backend();

}  // namespace lavin_fast::attention
