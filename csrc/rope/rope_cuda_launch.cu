// CUDA launchers of qk_norm_rope: the shared launch logic (rope_launch.h) with a launcher that uses the
// triple-chevron syntax on a stream. No torch headers.
#include "rope/rope_cuda_launch.h"

#include "common/cuda_stream_launch.cuh"
#include "rope/rope_launch.h"

// Dynamic shared memory stays under the 48 KiB every launch gets without opting in (rope_plan.h: at
// most 38 KiB, the backward with 4 rows of 1024 bf16 and head_dim 256), so no cudaFuncSetAttribute.
namespace lavin_fast::cuda {

cudaError_t qk_norm_rope_fwd(const QkNormRopeFwdParams& p, ElemType type, cudaStream_t stream) {
  return launch_on_stream(stream, [&](auto& launch) {
    return rope_kernels::launch_qk_norm_rope_fwd(p, type, launch);
  });
}

size_t qk_norm_rope_bwd_workspace_bytes(const QkNormRopeBwdParams& p, ElemType type) {
  return rope_kernels::bwd_workspace_bytes(p, type);
}

cudaError_t qk_norm_rope_bwd(const QkNormRopeBwdParams& p, ElemType type, void* workspace, size_t workspace_bytes,
                             cudaStream_t stream) {
  return launch_on_stream(stream, [&](auto& launch) {
    return rope_kernels::launch_qk_norm_rope_bwd(p, type, workspace, workspace_bytes, launch);
  });
}

}  // namespace lavin_fast::cuda

// The kernels this file compiles, and the only ones: {forward, backward} x {fp32, bf16, fp16} x
// {16-byte vectors, scalars}, plus the finalize.
namespace lavin_fast::rope_kernels {
#define LF_ROPE_KERNELS(T)                                                                                   \
  template __global__ void qk_norm_rope_fwd_kernel<T, 16 / sizeof(T)>(QkNormRopeFwdParams, RopePlan);        \
  template __global__ void qk_norm_rope_fwd_kernel<T, 1>(QkNormRopeFwdParams, RopePlan);                     \
  template __global__ void qk_norm_rope_bwd_kernel<T, 16 / sizeof(T)>(QkNormRopeBwdParams, RopePlan, float*); \
  template __global__ void qk_norm_rope_bwd_kernel<T, 1>(QkNormRopeBwdParams, RopePlan, float*);
LF_ROPE_KERNELS(float)
LF_ROPE_KERNELS(lf::bf16)
LF_ROPE_KERNELS(lf::fp16)
#undef LF_ROPE_KERNELS
template __global__ void qk_norm_rope_bwd_finalize_kernel<0>(QkNormRopeBwdParams, RopePlan, const float*);
}  // namespace lavin_fast::rope_kernels
