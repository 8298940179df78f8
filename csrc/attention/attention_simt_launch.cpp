// The attention kernels (attention_fwd_kernel.cuh, attention_bwd_kernel.cuh) compiled by g++ against
// the SIMT emulator, launched by the launch logic the CUDA launchers use (attention_launch.h).
#include "attention/attention_simt_launch.h"

// Register arrays are written and read under the same guards, which g++ cannot always prove.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "attention/attention_launch.h"
#include "simt/emulator_launch.h"

namespace lavin_fast::simt {
const char* attention_unsupported(ElemType dtype, int head_dim, int64_t num_heads) {
  return attention_simt::unsupported(dtype, head_dim, num_heads);
}

int64_t attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p) {
  return attention_simt::bwd_workspace_floats_for(p);
}

bool attention_fwd(const VarlenAttentionFwdParams& p, lf::emu::Schedule schedule, uint64_t seed) {
  EmulatorLaunch launch{schedule, seed};
  return attention_simt::launch_fwd(p, launch) == LaunchStatus::kOk;
}

bool attention_bwd(const VarlenAttentionBwdParams& p, lf::emu::Schedule schedule, uint64_t seed) {
  EmulatorLaunch launch{schedule, seed};
  return attention_simt::launch_bwd(p, launch) == LaunchStatus::kOk;
}

}  // namespace lavin_fast::simt
