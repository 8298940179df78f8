// The RMSNorm kernels (rms_norm_kernel.cuh) compiled by g++ against the SIMT emulator, launched by the
// launch logic the CUDA launcher uses (rms_norm_launch.h).
#include "norms/rms_norm_simt_launch.h"

#include <limits>
#include <memory>

// The kernels keep register arrays loaded and used under the same guards (active row, column in
// range), which g++ cannot prove equal: its (maybe-)uninitialized warnings here are false positives.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "norms/rms_norm_launch.h"
#include "simt/emulator_launch.h"

namespace lavin_fast::simt {

bool rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  EmulatorLaunch launch{schedule, seed};
  return rms_norm_simt::launch_rms_norm_fwd(p, type, launch) == LaunchStatus::kOk;
}

bool rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  // The workspace starts as NaN, like an output under the tests' poisoning: a partial sum the finalize
  // reads before the backward wrote it shows. operator new[] aligns to 16 bytes on x86-64 and aarch64.
  const size_t bytes = rms_norm_simt::bwd_workspace_bytes(p, type);
  const size_t floats = bytes / sizeof(float);
  std::unique_ptr<float[]> ws(floats ? new float[floats] : nullptr);
  for (size_t i = 0; i < floats; ++i) ws[i] = std::numeric_limits<float>::quiet_NaN();
  EmulatorLaunch launch{schedule, seed};
  return rms_norm_simt::launch_rms_norm_bwd(p, type, ws.get(), bytes, launch) == LaunchStatus::kOk;
}

}  // namespace lavin_fast::simt
