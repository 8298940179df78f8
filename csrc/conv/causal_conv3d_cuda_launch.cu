// CUDA launcher of the causal_conv3d forward: the shared launch logic (causal_conv3d_launch.h) with
// the triple-chevron syntax on a stream. No torch headers. 20 KiB of dynamic shared memory: under the
// 48 KiB default, so no cudaFuncSetAttribute.
#include "conv/causal_conv3d_cuda_launch.h"

#include "common/cuda_stream_launch.cuh"
#include "conv/causal_conv3d_launch.h"

namespace lavin_fast::cuda {

cudaError_t causal_conv3d_fwd(const conv::CausalConv3dParams& p, ElemType type, cudaStream_t stream) {
  return launch_on_stream(stream, [&](auto& launch) {
    return conv_kernels::launch_causal_conv3d_fwd(p, type, launch);
  });
}

}  // namespace lavin_fast::cuda

// The kernels this file compiles, and the only ones: bf16 and fp16. Every other choice (kernel size,
// stride, padding mode, layout) is a runtime value.
namespace lavin_fast::conv_kernels {
template __global__ void causal_conv3d_fwd_kernel<lf::bf16>(CausalConv3dParams);
template __global__ void causal_conv3d_fwd_kernel<lf::fp16>(CausalConv3dParams);
}  // namespace lavin_fast::conv_kernels
