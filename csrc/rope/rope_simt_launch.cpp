// The qk_norm_rope kernels (rope_kernel.cuh) compiled by g++ against the SIMT emulator, launched by the
// launch logic the CUDA launcher uses (rope_launch.h).
#include "rope/rope_simt_launch.h"

// Register arrays are loaded and used under the same guards (active row, column in range), which g++
// cannot prove equal: its (maybe-)uninitialized warnings here are false positives.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "rope/rope_launch.h"
#include "simt/emulator_launch.h"

namespace lavin_fast::simt {

bool qk_norm_rope_fwd(const QkNormRopeFwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  return launch_on_emulator(schedule, seed, [&](auto& launch) {
    return rope_kernels::launch_qk_norm_rope_fwd(p, type, launch);
  });
}

bool qk_norm_rope_bwd(const QkNormRopeBwdParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  const size_t bytes = rope_kernels::bwd_workspace_bytes(p, type);
  const std::unique_ptr<float[]> ws = nan_workspace(bytes);  // a partial read before written shows
  return launch_on_emulator(schedule, seed, [&](auto& launch) {
    return rope_kernels::launch_qk_norm_rope_bwd(p, type, ws.get(), bytes, launch);
  });
}

}  // namespace lavin_fast::simt
