// CUDA launcher of the causal_conv3d forward: the shared launch logic (causal_conv3d_launch.h) with
// the triple-chevron syntax on a stream. No torch headers. 20 KiB of dynamic shared memory: under the
// 48 KiB default, so no cudaFuncSetAttribute.
#include "conv/causal_conv3d_cuda_launch.h"
#include "conv/causal_conv3d_launch.h"

namespace lavin_fast::cuda {
namespace {

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

}  // namespace

cudaError_t causal_conv3d_fwd(const conv::CausalConv3dParams& p, ElemType type, cudaStream_t stream) {
  StreamLaunch launch{stream};
  switch (conv_simt::launch_causal_conv3d_fwd(p, type, launch)) {
    case conv_simt::LaunchStatus::kOk: return cudaSuccess;
    case conv_simt::LaunchStatus::kUnsupported: return cudaErrorInvalidValue;
    case conv_simt::LaunchStatus::kFailed: return launch.err;
  }
  return cudaErrorInvalidValue;
}

}  // namespace lavin_fast::cuda

// The kernels this file compiles, and the only ones: bf16 and fp16. Every other choice (kernel size,
// stride, padding mode, layout) is a runtime value.
namespace lavin_fast::conv_simt {
template __global__ void causal_conv3d_fwd_kernel<lf::bf16>(CausalConv3dParams);
template __global__ void causal_conv3d_fwd_kernel<lf::fp16>(CausalConv3dParams);
}  // namespace lavin_fast::conv_simt
