// The RMSNorm family's CUDA kernels run by the SIMT emulator (rms_norm_simt_launch.cpp), with the CUDA
// launcher's geometry (rms_norm_launch.h). Torch-free; called by the simt backend (rms_norm_register.cpp).
#pragma once

#include <cstdint>

#include "common/elem_type.h"
#include "norms/norm_params.h"
#include "simt/runtime.h"

namespace lavin_fast::simt {

// Both return false for what the kernels do not take (rows < 1, dim outside [1, INT32_MAX], no
// segments, grad_mult without mult) and throw lf::emu::Error when the emulator stops a kernel.
bool rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed);
bool rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed);

}  // namespace lavin_fast::simt
