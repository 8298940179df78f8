// CUDA launchers of the attention kernels, one file per head dim (attention_cuda_hd{64,72,128}.cu, so
// a parallel build compiles them side by side), called by the CUDA registration (attention_cuda.cpp).
// Torch-free, so the .cu files never compile torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "attention/attention_params.h"

namespace lavin_fast::cuda {

// Launch on `stream`, never synchronise. They return the launch's error (cudaGetLastError), or
// cudaErrorInvalidValue for what the kernels do not take (attention_unsupported, rows not 16-byte
// aligned, a workspace smaller than attention_bwd_workspace_floats).
template <int D>
cudaError_t attention_fwd(const VarlenAttentionFwdParams& p, cudaStream_t stream);
template <int D>
cudaError_t attention_bwd(const VarlenAttentionBwdParams& p, cudaStream_t stream);

// nullptr when the kernels take (dtype, head_dim, query heads), else what they take; and the
// zero-filled fp32 workspace the backward needs (host code: no kernels in these).
const char* attention_unsupported(ElemType dtype, int head_dim, int64_t num_heads);
int64_t attention_bwd_workspace_floats(const VarlenAttentionBwdParams& p);

}  // namespace lavin_fast::cuda
