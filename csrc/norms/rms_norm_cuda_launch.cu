// CUDA launchers of the RMSNorm family: the shared launch logic (rms_norm_launch.h) with a launcher
// that uses the triple-chevron syntax on a stream. No torch headers.
#include "norms/rms_norm_cuda_launch.h"

#include "common/cuda_stream_launch.cuh"
#include "norms/rms_norm_launch.h"

// Dynamic shared memory stays under the 48 KiB every launch gets without opting in (plan_fwd /
// plan_bwd: at most 16 KiB plus 256 bytes), so no cudaFuncSetAttribute.
namespace lavin_fast::cuda {

cudaError_t rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, cudaStream_t stream) {
  return launch_on_stream(stream, [&](auto& launch) {
    return rms_norm_kernels::launch_rms_norm_fwd(p, type, launch);
  });
}

size_t rms_norm_bwd_workspace_bytes(const RmsNormBwdParams& p, ElemType type) {
  return rms_norm_kernels::bwd_workspace_bytes(p, type);
}

cudaError_t rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream) {
  return launch_on_stream(stream, [&](auto& launch) {
    return rms_norm_kernels::launch_rms_norm_bwd(p, type, workspace, workspace_bytes, launch);
  });
}

}  // namespace lavin_fast::cuda

// The kernels this file compiles, and the only ones: {forward, backward} x {fp32, bf16, fp16} x
// {16-byte vectors, scalars}, plus the finalize. Every runtime option is a branch inside them.
namespace lavin_fast::rms_norm_kernels {
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
}  // namespace lavin_fast::rms_norm_kernels
