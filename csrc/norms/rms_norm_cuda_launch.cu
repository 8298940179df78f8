// CUDA launchers of the RMSNorm family: the shared launch logic (rms_norm_launch.h) with a launcher
// that uses the triple-chevron syntax on a stream. No torch headers.
#include "norms/rms_norm_cuda_launch.h"
#include "norms/rms_norm_launch.h"

namespace lavin_fast::cuda {
namespace {

using rms_norm_simt::LaunchStatus;

// Dynamic shared memory stays under the 48 KiB every launch gets without opting in (plan_fwd /
// plan_bwd: at most 16 KiB plus 256 bytes), so no cudaFuncSetAttribute.
struct StreamLaunch {
  cudaStream_t stream;
  cudaError_t err = cudaSuccess;

  template <typename... P, typename... A>
  bool operator()(const char* /*name*/, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    kernel<<<grid, block, smem, stream>>>(args...);
    err = cudaGetLastError();
    return err == cudaSuccess;
  }
};

cudaError_t to_cuda(LaunchStatus status, const StreamLaunch& launch) {
  switch (status) {
    case LaunchStatus::kOk: return cudaSuccess;
    case LaunchStatus::kUnsupported: return cudaErrorInvalidValue;
    case LaunchStatus::kFailed: return launch.err;
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, cudaStream_t stream) {
  StreamLaunch launch{stream};
  return to_cuda(rms_norm_simt::launch_rms_norm_fwd(p, type, launch), launch);
}

size_t rms_norm_bwd_workspace_bytes(const RmsNormBwdParams& p, ElemType type) {
  return rms_norm_simt::bwd_workspace_bytes(p, type);
}

cudaError_t rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream) {
  StreamLaunch launch{stream};
  return to_cuda(rms_norm_simt::launch_rms_norm_bwd(p, type, workspace, workspace_bytes, launch), launch);
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
