// How the RMSNorm kernels are launched, shared by the CUDA launcher (rms_norm_cuda_launch.cu, nvcc)
// and the emulator's (rms_norm_simt_launch.cpp, g++): the vector width from the shapes and pointers,
// the geometry (rms_norm_plan.h), the kernels in order. Only the launch itself differs, behind
// `launch`, a callable
//   bool launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, args...)
// returning whether the launch went through. Everything here is a template of the launcher or of the
// element type, so the two compilers' different lf::bf16 / dim3 never meet in one definition.
#pragma once

#include <climits>
#include <cstddef>

#include "common/elem_type.h"
#include "common/launch_status.h"
#include "common/static_switch.h"
#include "norms/norm_params.h"
#include "norms/rms_norm_kernel.cuh"
#include "norms/rms_norm_plan.h"

namespace lavin_fast::rms_norm_kernels {

using ::lavin_fast::LaunchStatus;

// What the kernels do not take (callers check these first, with messages): rows < 1, dim outside
// [1, INT32_MAX], no segments.
inline bool shapes_supported(const RmsNormFwdParams& p) {
  return p.rows >= 1 && p.dim >= 1 && p.dim <= INT_MAX && p.seg.num_segments >= 1 &&
         (p.seg.cu_seqlens != nullptr || p.seg.rows_per_segment >= 1);
}

// 16 bytes of the element type: 4 fp32 or 8 bf16 / fp16 per vector.
inline int vec_width(ElemType type) { return type == ElemType::kFloat32 ? 4 : 8; }

// The plan the backward uses (for the workspace size), by vector width.
inline RowPlan bwd_plan(const RmsNormBwdParams& p, ElemType type) {
  const int v = vec_width(type);
  if (!bwd_vectorizable(p, v)) return plan_bwd<1>(p);
  return v == 4 ? plan_bwd<4>(p) : plan_bwd<8>(p);
}

// Device memory the backward needs for its per-segment reductions (0 when none are requested or all
// rows fit one chunk): any 16-byte aligned allocation of that size, no initialisation needed.
inline size_t bwd_workspace_bytes(const RmsNormBwdParams& p, ElemType type) {
  return shapes_supported(p) ? bwd_workspace_floats(p, bwd_plan(p, type)) * sizeof(float) : 0;
}

template <typename T, int V, typename Launch>
LaunchStatus launch_fwd(const RmsNormFwdParams& p, Launch& launch) {
  const RowPlan plan = plan_fwd<V>(p);
  const bool ok = launch("rms_norm_fwd_kernel", &rms_norm_fwd_kernel<T, V>, dim3(static_cast<unsigned>(plan.grid)),
                         dim3(static_cast<unsigned>(plan.threads())), plan.smem_bytes, p, plan);
  return ok ? LaunchStatus::kOk : LaunchStatus::kFailed;
}

template <typename T, typename Launch>
LaunchStatus fwd_typed(const RmsNormFwdParams& p, Launch& launch) {
  constexpr int kV = 16 / sizeof(T);
  return fwd_vectorizable(p, kV) ? launch_fwd<T, kV>(p, launch) : launch_fwd<T, 1>(p, launch);
}

template <typename T, int V, typename Launch>
LaunchStatus launch_bwd(const RmsNormBwdParams& p, void* workspace, size_t workspace_bytes, Launch& launch) {
  const RowPlan plan = plan_bwd<V>(p);
  const size_t need = bwd_workspace_floats(p, plan) * sizeof(float);
  if (workspace_bytes < need || (need > 0 && !aligned16(workspace))) return LaunchStatus::kUnsupported;
  float* ws = static_cast<float*>(workspace);
  if (!launch("rms_norm_bwd_kernel", &rms_norm_bwd_kernel<T, V>, dim3(static_cast<unsigned>(plan.grid)),
              dim3(static_cast<unsigned>(plan.threads())), plan.smem_bytes, p, plan, ws)) {
    return LaunchStatus::kFailed;
  }
  if (need == 0) return LaunchStatus::kOk;
  const dim3 fin_grid(static_cast<unsigned>(fin_grid_x(plan)), static_cast<unsigned>(fin_grid_y(p, plan)));
  const bool ok = launch("rms_norm_bwd_finalize_kernel", &rms_norm_bwd_finalize_kernel<0>, fin_grid,
                         dim3(static_cast<unsigned>(kFinThreads)), fin_smem_bytes(), p, plan,
                         static_cast<const float*>(ws));
  return ok ? LaunchStatus::kOk : LaunchStatus::kFailed;
}

template <typename T, typename Launch>
LaunchStatus bwd_typed(const RmsNormBwdParams& p, void* workspace, size_t workspace_bytes, Launch& launch) {
  constexpr int kV = 16 / sizeof(T);
  return bwd_vectorizable(p, kV) ? launch_bwd<T, kV>(p, workspace, workspace_bytes, launch)
                                 : launch_bwd<T, 1>(p, workspace, workspace_bytes, launch);
}

// The family's entry points, for either launcher. The backward needs a workspace of
// bwd_workspace_bytes(p, type) bytes.
template <typename Launch>
LaunchStatus launch_rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, Launch& launch) {
  if (!shapes_supported(p)) return LaunchStatus::kUnsupported;
  return elem_type_switch<float, lf::bf16, lf::fp16>(type, LaunchStatus::kUnsupported, [&](auto t) {
    return fwd_typed<typename decltype(t)::type>(p, launch);
  });
}

template <typename Launch>
LaunchStatus launch_rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, void* workspace,
                                 size_t workspace_bytes, Launch& launch) {
  if (!shapes_supported(p) || (p.grad_mult && !p.mult)) return LaunchStatus::kUnsupported;
  return elem_type_switch<float, lf::bf16, lf::fp16>(type, LaunchStatus::kUnsupported, [&](auto t) {
    return bwd_typed<typename decltype(t)::type>(p, workspace, workspace_bytes, launch);
  });
}

}  // namespace lavin_fast::rms_norm_kernels
