// The qk_norm_rope kernels (rope_kernel.cuh) compiled by g++ against the SIMT emulator, launched by the
// launch logic the CUDA launcher uses (rope_launch.h).
#include "rope/rope_simt_launch.h"

#include <limits>
#include <memory>

// Register arrays are loaded and used under the same guards (active row, column in range), which g++
// cannot prove equal: its (maybe-)uninitialized warnings here are false positives.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "rope/rope_launch.h"
#include "simt/emulator_launch.h"

namespace lavin_fast::simt {

bool qk_norm_rope_fwd(const QkNormRopeFwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  EmulatorLaunch launch{schedule, seed};
  return rope_simt::launch_qk_norm_rope_fwd(p, type, launch) == LaunchStatus::kOk;
}

bool qk_norm_rope_bwd(const QkNormRopeBwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  // The workspace starts as NaN, like an output under the tests' poisoning: a partial the finalize
  // reads before the backward wrote it shows. operator new[] aligns to 16 bytes on x86-64 and aarch64.
  const size_t bytes = rope_simt::bwd_workspace_bytes(p, type);
  const size_t floats = bytes / sizeof(float);
  std::unique_ptr<float[]> ws(floats ? new float[floats] : nullptr);
  for (size_t i = 0; i < floats; ++i) ws[i] = std::numeric_limits<float>::quiet_NaN();
  EmulatorLaunch launch{schedule, seed};
  return rope_simt::launch_qk_norm_rope_bwd(p, type, ws.get(), bytes, launch) == LaunchStatus::kOk;
}

}  // namespace lavin_fast::simt
