// CUDA launcher of the causal_conv3d forward kernel (causal_conv3d_cuda_launch.cu), called by the CUDA
// registration (causal_conv3d_register.cpp). Torch-free.
#pragma once

#include <cuda_runtime_api.h>

#include "common/elem_type.h"
#include "conv/causal_conv3d_params.h"

namespace lavin_fast::cuda {

// Launches on `stream`, never synchronises. cudaErrorInvalidValue for what the kernel does not take
// (fp32, weight rows not padded to 32, more than 65535 * 64 output channels).
cudaError_t causal_conv3d_fwd(const conv::CausalConv3dParams& p, ElemType type, cudaStream_t stream);

}  // namespace lavin_fast::cuda
