// The qk_norm_rope CUDA kernels run by the SIMT emulator (rope_simt_launch.cpp), with the CUDA
// launcher's geometry (rope_launch.h). Torch-free; called by the simt backend (rope_register.cpp).
#pragma once

#include <cstdint>

#include "common/elem_type.h"
#include "rope/rope_params.h"
#include "simt/runtime.h"

namespace lavin_fast::simt {

// Both return false for what the kernels do not take and throw lf::emu::Error when the emulator stops
// a kernel.
bool qk_norm_rope_fwd(const QkNormRopeFwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed);
bool qk_norm_rope_bwd(const QkNormRopeBwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed);

}  // namespace lavin_fast::simt
