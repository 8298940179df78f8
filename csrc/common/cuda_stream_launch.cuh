// The launcher every op's CUDA side hands to its launch logic: triple-chevron launches on one stream.
// nvcc only; no torch headers.
#pragma once

#include <cuda_runtime.h>

#include "common/launch_status.h"

namespace lavin_fast::cuda {

struct StreamLaunch {
  cudaStream_t stream;
  cudaError_t err = cudaSuccess;

  template <typename... P, typename... A>
  bool operator()(const char* /*name*/, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return true;  // nothing to do (CUDA would reject it)
    // Past the 48 KiB every launch gets, dynamic shared memory needs the opt-in (up to 163 KiB on
    // sm_80, 227 KiB on sm_90).
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

// An op's launch logic, run(launch) -> LaunchStatus, with a StreamLaunch on `stream`: its outcome as
// the CUDA launchers report it.
template <typename Run>
cudaError_t launch_on_stream(cudaStream_t stream, Run&& run) {
  StreamLaunch launch{stream};
  return to_cuda(run(launch), launch);
}

}  // namespace lavin_fast::cuda
