// The attention kernels (attention_fwd_kernel.cuh, attention_bwd_kernel.cuh) compiled by g++ against
// the SIMT emulator, launched by the launch logic the CUDA launchers use (attention_launch.h).
#include "attention/attention_simt_launch.h"

// Register arrays are written and read under the same guards, which g++ cannot always prove.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "attention/attention_launch.h"
#include "simt/emulator_launch.h"

namespace lavin_fast::simt {

bool attention_fwd(const VarlenAttentionFwdParams& p, lf::emu::Schedule schedule, uint64_t seed) {
  return launch_on_emulator(schedule, seed, [&](auto& launch) {
    return attention_kernels::launch_fwd(p, launch);
  });
}

bool attention_bwd(const VarlenAttentionBwdParams& p, lf::emu::Schedule schedule, uint64_t seed) {
  return launch_on_emulator(schedule, seed, [&](auto& launch) {
    return attention_kernels::launch_bwd(p, launch);
  });
}

}  // namespace lavin_fast::simt
