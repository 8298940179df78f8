// The attention kernels run by the SIMT emulator (attention_simt_launch.cpp), with the CUDA launchers'
// geometry (attention_launch.h). Torch-free; called by the simt backend (attention_register.cpp).
#pragma once

#include <cstdint>

#include "attention/attention_params.h"
#include "simt/runtime.h"

namespace lavin_fast::simt {

// Both return false for what the kernels do not take (see attention_launch.h: dtype, head dim,
// 16-byte aligned rows, a large enough workspace) and throw lf::emu::Error when the emulator stops a
// kernel.
bool attention_fwd(const VarlenAttentionFwdParams& p, lf::emu::Schedule schedule, uint64_t seed);
bool attention_bwd(const VarlenAttentionBwdParams& p, lf::emu::Schedule schedule, uint64_t seed);

}  // namespace lavin_fast::simt
