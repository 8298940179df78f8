// CUDA launchers of qk_norm_rope: the shared launch logic (rope_launch.h) with a launcher that uses the
// triple-chevron syntax on a stream. No torch headers.
#include "rope/rope_cuda_launch.h"
#include "rope/rope_launch.h"

namespace lavin_fast::cuda {
namespace {

using rope_simt::LaunchStatus;

// Dynamic shared memory stays under the 48 KiB every launch gets without opting in (rope_plan.h: at
// most ~34 KiB at the widest rows), so no cudaFuncSetAttribute.
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

cudaError_t qk_norm_rope_fwd(const QkNormRopeFwdParams& p, ElemType type, cudaStream_t stream) {
  StreamLaunch launch{stream};
  return to_cuda(rope_simt::launch_qk_norm_rope_fwd(p, type, launch), launch);
}

size_t qk_norm_rope_bwd_workspace_bytes(const QkNormRopeBwdParams& p, ElemType type) {
  return rope_simt::bwd_workspace_bytes(p, type);
}

cudaError_t qk_norm_rope_bwd(const QkNormRopeBwdParams& p, ElemType type, void* workspace, size_t workspace_bytes,
                             cudaStream_t stream) {
  StreamLaunch launch{stream};
  return to_cuda(rope_simt::launch_qk_norm_rope_bwd(p, type, workspace, workspace_bytes, launch), launch);
}

}  // namespace lavin_fast::cuda

// The kernels this file compiles, and the only ones: {forward, backward} x {fp32, bf16, fp16} x
// {16-byte vectors, scalars}, plus the finalize.
namespace lavin_fast::rope_simt {
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
}  // namespace lavin_fast::rope_simt
