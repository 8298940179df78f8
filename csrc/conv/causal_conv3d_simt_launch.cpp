// The causal_conv3d kernel (causal_conv3d_kernel.cuh) compiled by g++ against the SIMT emulator,
// launched by the launch logic the CUDA launcher uses (causal_conv3d_launch.h).
#include "conv/causal_conv3d_simt_launch.h"

#include "conv/causal_conv3d_launch.h"
#include "simt/emulator_launch.h"

namespace lavin_fast::simt {

bool causal_conv3d_fwd(const conv::CausalConv3dParams& p, ElemType type, lf::emu::Schedule schedule, uint64_t seed) {
  return launch_on_emulator(schedule, seed, [&](auto& launch) {
    return conv_kernels::launch_causal_conv3d_fwd(p, type, launch);
  });
}

}  // namespace lavin_fast::simt
