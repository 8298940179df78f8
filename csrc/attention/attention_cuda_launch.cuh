// The CUDA launcher every attention_cuda_hd*.cu instantiates for its head dim: the shared launch logic
// (attention_launch.h) with a launcher using the triple-chevron syntax on a stream. No torch headers.
#pragma once

#include "attention/attention_cuda_launch.h"
#include "attention/attention_launch.h"
#include "common/cuda_stream_launch.cuh"

// The kernels ask for up to 102 KiB of dynamic shared memory: StreamLaunch opts in past 48 KiB.
namespace lavin_fast::cuda {

template <int D>
cudaError_t attention_fwd(const VarlenAttentionFwdParams& p, cudaStream_t stream) {
  return launch_on_stream(stream, [&](auto& launch) {
    return attention_kernels::launch_fwd_hd<D>(p, launch);
  });
}

template <int D>
cudaError_t attention_bwd(const VarlenAttentionBwdParams& p, cudaStream_t stream) {
  return launch_on_stream(stream, [&](auto& launch) {
    return attention_kernels::launch_bwd_hd<D>(p, launch);
  });
}

}  // namespace lavin_fast::cuda

// A file's kernels: {forward, backward, deterministic dQ} x {bf16, fp16} for its head dim, plus the
// small head-dim-free preprocess / convert kernels (each file compiles its own copy).
#define LF_ATTENTION_CUDA_INSTANTIATE(D)                                                               \
  static_assert(lavin_fast::CudaHeadDims::contains(D), "attention_params.h: CudaHeadDims lacks " #D);  \
  template cudaError_t lavin_fast::cuda::attention_fwd<D>(const lavin_fast::VarlenAttentionFwdParams&, \
                                                          cudaStream_t);                               \
  template cudaError_t lavin_fast::cuda::attention_bwd<D>(const lavin_fast::VarlenAttentionBwdParams&, \
                                                          cudaStream_t);
