// CUDA launchers of qk_norm_rope (rope_cuda_launch.cu), called by the CUDA registration
// (rope_register.cpp). Torch-free, so the .cu never compiles torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "common/elem_type.h"
#include "rope/rope_params.h"

namespace lavin_fast::cuda {

// Launch on `stream`, never synchronise. They return the launch's error (cudaGetLastError), or
// cudaErrorInvalidValue for what the kernels do not take (the host checks these first, with messages).
cudaError_t qk_norm_rope_fwd(const QkNormRopeFwdParams& p, ElemType type, cudaStream_t stream);
size_t qk_norm_rope_bwd_workspace_bytes(const QkNormRopeBwdParams& p, ElemType type);
cudaError_t qk_norm_rope_bwd(const QkNormRopeBwdParams& p, ElemType type, void* workspace, size_t workspace_bytes,
                             cudaStream_t stream);

}  // namespace lavin_fast::cuda
