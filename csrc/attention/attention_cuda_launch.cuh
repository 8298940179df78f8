// The CUDA launcher every attention_cuda_hd*.cu instantiates for its head dim: the shared launch logic
// (attention_launch.h) with a launcher using the triple-chevron syntax on a stream. No torch headers.
#pragma once

#include "attention/attention_cuda_launch.h"
#include "attention/attention_launch.h"

namespace lavin_fast::cuda {
namespace attention_detail {

using attention_simt::LaunchStatus;

struct StreamLaunch {
  cudaStream_t stream;
  cudaError_t err = cudaSuccess;

  template <typename... P, typename... A>
  bool operator()(const char* /*name*/, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return true;
    // Past the 48 KiB every launch gets, dynamic shared memory needs the opt-in (up to 163 KiB on
    // sm_80, 227 KiB on sm_90; the kernels ask for at most 102 KiB).
    if (smem > 48 * 1024) {
      err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
      if (err != cudaSuccess) return false;
    }
    kernel<<<grid, block, smem, stream>>>(args...);
    err = cudaGetLastError();
    return err == cudaSuccess;
  }
};

inline cudaError_t to_cuda(LaunchStatus status, const StreamLaunch& launch) {
  switch (status) {
    case LaunchStatus::kOk: return cudaSuccess;
    case LaunchStatus::kUnsupported: return cudaErrorInvalidValue;
    case LaunchStatus::kFailed: return launch.err;
  }
  return cudaErrorInvalidValue;
}

}  // namespace attention_detail

template <int D>
cudaError_t attention_fwd(const VarlenAttentionFwdParams& p, cudaStream_t stream) {
  attention_detail::StreamLaunch launch{stream};
  return attention_detail::to_cuda(attention_simt::launch_fwd_hd<D>(p, launch), launch);
}

template <int D>
cudaError_t attention_bwd(const VarlenAttentionBwdParams& p, cudaStream_t stream) {
  attention_detail::StreamLaunch launch{stream};
  return attention_detail::to_cuda(attention_simt::launch_bwd_hd<D>(p, launch), launch);
}

}  // namespace lavin_fast::cuda

// A file's kernels: {forward, backward, deterministic dQ} x {bf16, fp16} for its head dim, plus the
// small head-dim-free preprocess / convert kernels (each file compiles its own copy).
#define LF_ATTENTION_CUDA_INSTANTIATE(D)                                                               \
  template cudaError_t lavin_fast::cuda::attention_fwd<D>(const lavin_fast::VarlenAttentionFwdParams&, \
                                                          cudaStream_t);                               \
  template cudaError_t lavin_fast::cuda::attention_bwd<D>(const lavin_fast::VarlenAttentionBwdParams&, \
                                                          cudaStream_t);
