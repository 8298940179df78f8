// CUDA launchers of the attention kernels, one file per head dim of CudaHeadDims (attention_cuda_hd<D>.cu,
// so a parallel build compiles them side by side), called by the CUDA backend (attention_register.cpp).
// Torch-free, so the .cu files never compile torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention/attention_params.h"

namespace lavin_fast::cuda {

// Launch on `stream`, never synchronise. They return the launch's error (cudaGetLastError), or
// cudaErrorInvalidValue for what the kernels do not take (attention_plan.h: unsupported, rows not
// 16-byte aligned, a workspace smaller than bwd_workspace_floats_for).
template <int D>
cudaError_t attention_fwd(const VarlenAttentionFwdParams& p, cudaStream_t stream);
template <int D>
cudaError_t attention_bwd(const VarlenAttentionBwdParams& p, cudaStream_t stream);

}  // namespace lavin_fast::cuda
