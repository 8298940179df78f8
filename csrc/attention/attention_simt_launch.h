// The attention kernels run by the SIMT emulator (attention_simt_launch.cpp), with the CUDA launchers'
// geometry (attention_launch.h). Torch-free; called by the simt backend (attention_simt.cpp).
#pragma once

#include <cstdint>

#include "attention/attention_params.h"
#include "simt/runtime.h"

namespace lavin_fast::simt {

// nullptr when the kernels take (dtype, head_dim, query heads), else what they take.
const char* attention_unsupported(ElemType dtype, int head_dim, int64_t num_heads);
// Floats of zero-filled workspace the backward needs (p.workspace / p.workspace_floats).
int64_t attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p);
// Both return false for what the kernels do not take (see attention_launch.h: dtype, head dim,
// 16-byte aligned rows, a large enough workspace) and throw lf::emu::Error when the emulator stops a
// kernel.
bool attention_fwd(const VarlenAttentionFwdParams& p, lf::emu::Schedule schedule, uint64_t seed);
bool attention_bwd(const VarlenAttentionBwdParams& p, lf::emu::Schedule schedule, uint64_t seed);

}  // namespace lavin_fast::simt
