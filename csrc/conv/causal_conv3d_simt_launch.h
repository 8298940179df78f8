// The causal_conv3d forward kernel run by the SIMT emulator (causal_conv3d_simt_launch.cpp), with the
// CUDA launcher's geometry. Torch-free; called by the simt backend (causal_conv3d_register.cpp).
#pragma once

#include <cstdint>

#include "common/elem_type.h"
#include "conv/causal_conv3d_params.h"
#include "simt/runtime.h"

namespace lavin_fast::simt {

// False for what the kernel does not take; throws lf::emu::Error when the emulator stops the kernel.
bool causal_conv3d_fwd(const conv::CausalConv3dParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed);

}  // namespace lavin_fast::simt
