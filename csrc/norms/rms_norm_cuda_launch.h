// CUDA launchers of the RMSNorm family (rms_norm_cuda_launch.cu), called by the CUDA registration
// (rms_norm_register.cpp). Torch-free, so the .cu never compiles torch headers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "common/elem_type.h"
#include "norms/norm_params.h"

namespace lavin_fast::cuda {

// All launch on `stream` and never synchronise. They return the launch's error (cudaGetLastError),
// or cudaErrorInvalidValue for what the kernels do not take (callers check these first, with
// messages): rows < 1, dim outside [1, INT32_MAX], no segments, grad_mult without mult, a workspace
// smaller than rms_norm_bwd_workspace_bytes.
cudaError_t rms_norm_fwd(const RmsNormFwdParams& p, ElemType type, cudaStream_t stream);

// Device memory the backward needs for its per-segment reductions (0 when none are requested or all
// rows fit one chunk); any 16-byte aligned allocation of that size, no initialisation needed.
size_t rms_norm_bwd_workspace_bytes(const RmsNormBwdParams& p, ElemType type);
cudaError_t rms_norm_bwd(const RmsNormBwdParams& p, ElemType type, void* workspace,
                         size_t workspace_bytes, cudaStream_t stream);

}  // namespace lavin_fast::cuda
