// The RMSNorm kernels (rms_norm_kernel.cuh) compiled by g++ against the SIMT emulator, launched by the
// launch logic the CUDA launcher uses (rms_norm_launch.h).
#include "norms/rms_norm_simt_launch.h"

// The kernels keep register arrays loaded and used under the same guards (active row, column in
// range), which g++ cannot prove equal: its (maybe-)uninitialized warnings here are false positives.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "norms/rms_norm_launch.h"
#include "simt/emulator_launch.h"

namespace lavin_fast::simt {

bool rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  return launch_on_emulator(schedule, seed, [&](auto& launch) {
    return rms_norm_kernels::launch_rms_norm_fwd(p, type, launch);
  });
}

bool rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  const size_t bytes = rms_norm_kernels::bwd_workspace_bytes(p, type);
  const std::unique_ptr<float[]> ws = nan_workspace(bytes);  // a partial read before written shows
  return launch_on_emulator(schedule, seed, [&](auto& launch) {
    return rms_norm_kernels::launch_rms_norm_bwd(p, type, ws.get(), bytes, launch);
  });
}

}  // namespace lavin_fast::simt
