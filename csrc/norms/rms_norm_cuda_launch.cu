// CUDA launchers of the RMSNorm family: choose the vector width from the shapes and pointers, plan the
// geometry (rms_norm_plan.h), launch the portable kernels (rms_norm_kernel.cuh). No torch headers.
#include <climits>

#include "norms/rms_norm_cuda_launch.h"
#include "norms/rms_norm_kernel.cuh"
#include "norms/rms_norm_plan.h"

namespace lavin_fast::cuda {
namespace {

using rms_norm_simt::RowPlan;

template <ElemType kType>
struct Elem;
template <>
struct Elem<ElemType::kFloat32> { using type = float; };
template <>
struct Elem<ElemType::kBFloat16> { using type = lf::bf16; };
template <>
struct Elem<ElemType::kFloat16> { using type = lf::fp16; };

// 16 bytes of T: 4 fp32 or 8 bf16 / fp16 per load.
template <typename T>
constexpr int kVecWidth = 16 / sizeof(T);

bool shapes_supported(const RmsNormFwdParams& p) {
  return p.rows >= 1 && p.dim >= 1 && p.dim <= INT_MAX && p.seg.num_segments >= 1 &&
         (p.seg.cu_seqlens != nullptr || p.seg.rows_per_segment >= 1);
}

// Dynamic shared memory stays under the 48 KiB every launch gets without opting in (plan_fwd /
// plan_bwd: at most 16 KiB plus 256 bytes), so no cudaFuncSetAttribute.
template <typename T, int V>
cudaError_t launch_fwd(const RmsNormFwdParams& p, cudaStream_t stream) {
  const RowPlan plan = rms_norm_simt::plan_fwd<V>(p);
  rms_norm_simt::rms_norm_fwd_kernel<T, V>
      <<<static_cast<unsigned>(plan.grid), plan.threads(), plan.smem_bytes, stream>>>(p, plan);
  return cudaGetLastError();
}

template <typename T>
cudaError_t fwd_typed(const RmsNormFwdParams& p, cudaStream_t stream) {
  constexpr int kV = kVecWidth<T>;
  return rms_norm_simt::fwd_vectorizable(p, kV) ? launch_fwd<T, kV>(p, stream) : launch_fwd<T, 1>(p, stream);
}

// The plan launch_bwd will use (for the workspace size).
template <typename T>
RowPlan bwd_plan_typed(const RmsNormBwdParams& p) {
  constexpr int kV = kVecWidth<T>;
  return rms_norm_simt::bwd_vectorizable(p, kV) ? rms_norm_simt::plan_bwd<kV>(p) : rms_norm_simt::plan_bwd<1>(p);
}

template <typename T, int V>
cudaError_t launch_bwd(const RmsNormBwdParams& p, void* workspace, size_t workspace_bytes,
                       cudaStream_t stream) {
  const RowPlan plan = rms_norm_simt::plan_bwd<V>(p);
  const size_t need = rms_norm_simt::bwd_workspace_floats(p, plan) * sizeof(float);
  if (workspace_bytes < need || (need > 0 && !rms_norm_simt::aligned16(workspace))) return cudaErrorInvalidValue;
  float* ws = static_cast<float*>(workspace);
  rms_norm_simt::rms_norm_bwd_kernel<T, V>
      <<<static_cast<unsigned>(plan.grid), plan.threads(), plan.smem_bytes, stream>>>(p, plan, ws);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess || need == 0) return err;
  const dim3 fin_grid(static_cast<unsigned>(rms_norm_simt::fin_grid_x(plan)),
                      static_cast<unsigned>(rms_norm_simt::fin_grid_y(p, plan)));
  rms_norm_simt::rms_norm_bwd_finalize_kernel<>
      <<<fin_grid, rms_norm_simt::kFinThreads, rms_norm_simt::fin_smem_bytes(), stream>>>(p, plan, ws);
  return cudaGetLastError();
}

template <typename T>
cudaError_t bwd_typed(const RmsNormBwdParams& p, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream) {
  constexpr int kV = kVecWidth<T>;
  return rms_norm_simt::bwd_vectorizable(p, kV) ? launch_bwd<T, kV>(p, workspace, workspace_bytes, stream)
                                                : launch_bwd<T, 1>(p, workspace, workspace_bytes, stream);
}

}  // namespace

cudaError_t rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, cudaStream_t stream) {
  if (!shapes_supported(p)) return cudaErrorInvalidValue;
  switch (type) {
    case ElemType::kFloat32: return fwd_typed<float>(p, stream);
    case ElemType::kBFloat16: return fwd_typed<lf::bf16>(p, stream);
    case ElemType::kFloat16: return fwd_typed<lf::fp16>(p, stream);
  }
  return cudaErrorInvalidValue;
}

size_t rms_norm_bwd_workspace_bytes(const RmsNormBwdParams& p, ElemType type) {
  if (!shapes_supported(p)) return 0;
  RowPlan plan;
  switch (type) {
    case ElemType::kFloat32: plan = bwd_plan_typed<float>(p); break;
    case ElemType::kBFloat16: plan = bwd_plan_typed<lf::bf16>(p); break;
    case ElemType::kFloat16: plan = bwd_plan_typed<lf::fp16>(p); break;
    default: return 0;
  }
  return rms_norm_simt::bwd_workspace_floats(p, plan) * sizeof(float);
}

cudaError_t rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream) {
  if (!shapes_supported(p) || (p.grad_mult && !p.mult)) return cudaErrorInvalidValue;
  switch (type) {
    case ElemType::kFloat32: return bwd_typed<float>(p, workspace, workspace_bytes, stream);
    case ElemType::kBFloat16: return bwd_typed<lf::bf16>(p, workspace, workspace_bytes, stream);
    case ElemType::kFloat16: return bwd_typed<lf::fp16>(p, workspace, workspace_bytes, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace lavin_fast::cuda

// The kernels this file compiles, and the only ones: {forward, backward} x {fp32, bf16, fp16} x
// {16-byte vectors, scalars}, plus the finalize. Every runtime option is a branch inside them.
namespace lavin_fast::rms_norm_simt {
#define LF_RMS_NORM_KERNELS(T)                                                                   \
  template __global__ void rms_norm_fwd_kernel<T, 16 / sizeof(T)>(RmsNormFwdParams, RowPlan);        \
  template __global__ void rms_norm_fwd_kernel<T, 1>(RmsNormFwdParams, RowPlan);                     \
  template __global__ void rms_norm_bwd_kernel<T, 16 / sizeof(T)>(RmsNormBwdParams, RowPlan, float*); \
  template __global__ void rms_norm_bwd_kernel<T, 1>(RmsNormBwdParams, RowPlan, float*);
LF_RMS_NORM_KERNELS(float)
LF_RMS_NORM_KERNELS(lf::bf16)
LF_RMS_NORM_KERNELS(lf::fp16)
#undef LF_RMS_NORM_KERNELS
template __global__ void rms_norm_bwd_finalize_kernel<0>(RmsNormBwdParams, RowPlan, const float*);
}  // namespace lavin_fast::rms_norm_simt
