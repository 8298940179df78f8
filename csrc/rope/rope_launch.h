// How the qk_norm_rope kernels are launched, shared by the CUDA launcher (rope_cuda_launch.cu, nvcc)
// and the emulator's (rope_simt_launch.cpp, g++): vector width, geometry (rope_plan.h), kernels in
// order. Only the launch itself differs, behind `launch`, a callable
//   bool launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, args...)
#pragma once

#include <cstddef>

#include "common/elem_type.h"
#include "common/launch_status.h"
#include "common/static_switch.h"
#include "rope/rope_kernel.cuh"
#include "rope/rope_params.h"
#include "rope/rope_plan.h"

namespace lavin_fast::rope_kernels {

using ::lavin_fast::LaunchStatus;

// What the kernels do not take (the host checks these first, with messages).
inline bool shapes_supported(const QkNormRopeFwdParams& p) {
  return p.rows >= 1 && p.width >= 1 && p.width <= kMaxWidth && p.rope.head_dim >= 2 &&
         p.width % p.rope.head_dim == 0;
}

inline int vec_width(ElemType type) { return type == ElemType::kFloat32 ? 4 : 8; }

inline RopePlan bwd_plan(const QkNormRopeBwdParams& p, ElemType type) {
  const int v = vec_width(type);
  if (!bwd_vectorizable(p, v)) return plan_bwd<1>(p);
  return v == 4 ? plan_bwd<4>(p) : plan_bwd<8>(p);
}

// Device memory the backward needs for grad_weight's partial rows (0 when none): any 16-byte aligned
// allocation of that size, no initialisation needed.
inline size_t bwd_workspace_bytes(const QkNormRopeBwdParams& p, ElemType type) {
  return shapes_supported(p) ? bwd_workspace_floats(p, bwd_plan(p, type)) * sizeof(float) : 0;
}

template <typename T, int V, typename Launch>
LaunchStatus launch_fwd(const QkNormRopeFwdParams& p, Launch& launch) {
  const RopePlan plan = plan_fwd<V>(p);
  const bool ok = launch("qk_norm_rope_fwd_kernel", &qk_norm_rope_fwd_kernel<T, V>, dim3(static_cast<unsigned>(plan.grid)),
                         dim3(static_cast<unsigned>(plan.threads())), plan.smem_bytes, p, plan);
  return ok ? LaunchStatus::kOk : LaunchStatus::kFailed;
}

template <typename T, int V, typename Launch>
LaunchStatus launch_bwd(const QkNormRopeBwdParams& p, void* workspace, size_t workspace_bytes, Launch& launch) {
  const RopePlan plan = plan_bwd<V>(p);
  const size_t need = bwd_workspace_floats(p, plan) * sizeof(float);
  if (workspace_bytes < need || (need > 0 && !aligned16(workspace))) return LaunchStatus::kUnsupported;
  float* ws = static_cast<float*>(workspace);
  if (!launch("qk_norm_rope_bwd_kernel", &qk_norm_rope_bwd_kernel<T, V>, dim3(static_cast<unsigned>(plan.grid)),
              dim3(static_cast<unsigned>(plan.threads())), plan.smem_bytes, p, plan, ws)) {
    return LaunchStatus::kFailed;
  }
  if (need == 0) return LaunchStatus::kOk;
  const bool ok = launch("qk_norm_rope_bwd_finalize_kernel", &qk_norm_rope_bwd_finalize_kernel<0>,
                         dim3(static_cast<unsigned>(ceil_div(p.width, kFinThreads))),
                         dim3(static_cast<unsigned>(kFinThreads)), size_t{0}, p, plan, static_cast<const float*>(ws));
  return ok ? LaunchStatus::kOk : LaunchStatus::kFailed;
}

template <typename T, typename Launch>
LaunchStatus fwd_typed(const QkNormRopeFwdParams& p, Launch& launch) {
  constexpr int kV = 16 / sizeof(T);
  return fwd_vectorizable(p, kV) ? launch_fwd<T, kV>(p, launch) : launch_fwd<T, 1>(p, launch);
}

template <typename T, typename Launch>
LaunchStatus bwd_typed(const QkNormRopeBwdParams& p, void* ws, size_t ws_bytes, Launch& launch) {
  constexpr int kV = 16 / sizeof(T);
  return bwd_vectorizable(p, kV) ? launch_bwd<T, kV>(p, ws, ws_bytes, launch) : launch_bwd<T, 1>(p, ws, ws_bytes, launch);
}

template <typename Launch>
LaunchStatus launch_qk_norm_rope_fwd(const QkNormRopeFwdParams& p, ElemType type, Launch& launch) {
  if (!shapes_supported(p)) return LaunchStatus::kUnsupported;
  return elem_type_switch<float, lf::bf16, lf::fp16>(type, LaunchStatus::kUnsupported, [&](auto t) {
    return fwd_typed<typename decltype(t)::type>(p, launch);
  });
}

template <typename Launch>
LaunchStatus launch_qk_norm_rope_bwd(const QkNormRopeBwdParams& p, ElemType type, void* ws, size_t ws_bytes,
                                     Launch& launch) {
  if (!shapes_supported(p)) return LaunchStatus::kUnsupported;
  return elem_type_switch<float, lf::bf16, lf::fp16>(type, LaunchStatus::kUnsupported, [&](auto t) {
    return bwd_typed<typename decltype(t)::type>(p, ws, ws_bytes, launch);
  });
}

}  // namespace lavin_fast::rope_kernels
