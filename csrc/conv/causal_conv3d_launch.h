// How the causal_conv3d forward kernel is launched, shared by the CUDA launcher
// (causal_conv3d_cuda_launch.cu, nvcc) and the emulator's (causal_conv3d_simt_launch.cpp, g++). Only
// the launch itself differs, behind `launch`, a callable
//   bool launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, args...)
#pragma once

#include <climits>
#include <cstdint>

#include "common/elem_type.h"
#include "common/launch_status.h"
#include "conv/causal_conv3d_kernel.cuh"
#include "conv/causal_conv3d_params.h"

namespace lavin_fast::conv_kernels {

using ::lavin_fast::LaunchStatus;

// What the kernel takes: bf16 / fp16, weight rows padded to the k tile, grid within CUDA's limits.
inline bool supported(const CausalConv3dParams& p, ElemType type) {
  const int64_t m = p.n * p.t_out * p.h_out * p.w_out;
  return type != ElemType::kFloat32 && m >= 1 && p.o >= 1 && p.weight_row_stride % kBlockK == 0 &&
         p.weight_row_stride >= p.c * p.kt * p.kh * p.kw && (m + kBlockM - 1) / kBlockM <= INT_MAX &&
         (p.o + kBlockN - 1) / kBlockN <= 65535;
}

template <typename Launch>
LaunchStatus launch_causal_conv3d_fwd(const CausalConv3dParams& p, ElemType type, Launch& launch) {
  if (!supported(p, type)) return LaunchStatus::kUnsupported;
  const int64_t m = p.n * p.t_out * p.h_out * p.w_out;
  const dim3 grid(static_cast<unsigned>((m + kBlockM - 1) / kBlockM), static_cast<unsigned>((p.o + kBlockN - 1) / kBlockN));
  const dim3 block(kThreads);
  const bool ok = type == ElemType::kBFloat16
                      ? launch("causal_conv3d_fwd_kernel<bf16>", &causal_conv3d_fwd_kernel<lf::bf16>, grid, block,
                               static_cast<size_t>(kSmemBytes), p)
                      : launch("causal_conv3d_fwd_kernel<fp16>", &causal_conv3d_fwd_kernel<lf::fp16>, grid, block,
                               static_cast<size_t>(kSmemBytes), p);
  return ok ? LaunchStatus::kOk : LaunchStatus::kFailed;
}

}  // namespace lavin_fast::conv_kernels
