// The simt backend of causal_conv3d: the CUDA forward kernel run by the SIMT emulator on CPU tensors.
#pragma once

#include "conv/causal_conv3d_api.h"

namespace lavin_fast::conv {
const Backend& simt_backend();
}  // namespace lavin_fast::conv
