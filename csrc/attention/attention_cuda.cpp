// CUDA registrations of varlen attention: the shared host side (attention_api.h) with a backend that
// launches the kernels of attention_cuda_hd{64,72,128}.cu on the current stream. Mirrors
// attention_cpu_register.cpp.
#include <c10/core/DeviceGuard.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "attention/attention_api.h"
#include "attention/attention_cuda_launch.h"
#include "attention/attention_kernel_inputs.h"

namespace lavin_fast::attention {
namespace {

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "lavin_fast: launching the CUDA ", what, " kernels failed: ",
              cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

at::Device current_device() { return at::Device(at::kCUDA, c10::cuda::current_device()); }

void fwd(const VarlenAttentionFwdParams& params) {
  VarlenAttentionFwdParams p = params;
  const auto keep = align_inputs(p, current_device());  // copies freed in stream order
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err = cudaErrorInvalidValue;
  switch (p.head_dim) {
    case 64: err = cuda::attention_fwd<64>(p, stream); break;
    case 72: err = cuda::attention_fwd<72>(p, stream); break;
    case 128: err = cuda::attention_fwd<128>(p, stream); break;
  }
  check_launch(err, "varlen attention forward");
}

void bwd(const VarlenAttentionBwdParams& params) {
  VarlenAttentionBwdParams p = params;
  const auto keep = align_inputs(p, current_device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err = cudaErrorInvalidValue;
  switch (p.head_dim) {
    case 64: err = cuda::attention_bwd<64>(p, stream); break;
    case 72: err = cuda::attention_bwd<72>(p, stream); break;
    case 128: err = cuda::attention_bwd<128>(p, stream); break;
  }
  check_launch(err, "varlen attention backward");
}

// cu_seqlens values stay on the device (reading them would synchronise): shape and dtype only.
const Backend kCuda{"cuda", /*validates_cu_seqlens=*/false, &cuda::attention_unsupported,
                    /*writes_lse_residual=*/false, &fwd,
                    &cuda::attention_bwd_workspace_floats, &bwd};

c10::OptionalDeviceGuard guard_device_of(const at::Tensor& t) {
  return c10::OptionalDeviceGuard(t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt);
}

using OptT = std::optional<at::Tensor>;

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CUDA, m) {
  m.impl("varlen_attention",
         [](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu_q,
            const at::Tensor& cu_k, int64_t max_q, int64_t max_k, double scale, bool causal,
            const OptT& frame_q, const OptT& frame_k, const OptT& tiles, int64_t tile_q, int64_t tile_k) {
           const auto guard = guard_device_of(q);
           return varlen_attention(kCuda, q, k, v, cu_q, cu_k, max_q, max_k, scale, causal, frame_q, frame_k,
                                   tiles, tile_q, tile_k);
         });
  m.impl("varlen_attention_backward",
         [](const at::Tensor& g, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
            const at::Tensor& out, const at::Tensor& lse, const OptT& lse_res, const at::Tensor& cu_q,
            const at::Tensor& cu_k, int64_t max_q, int64_t max_k, double scale, bool causal,
            const OptT& frame_q, const OptT& frame_k, const OptT& tiles, int64_t tile_q, int64_t tile_k,
            bool det) {
           const auto guard = guard_device_of(q);
           return varlen_attention_backward(kCuda, g, q, k, v, out, lse, lse_res, cu_q, cu_k, max_q, max_k, scale,
                                            causal, frame_q, frame_k, tiles, tile_q, tile_k, det);
         });
}

}  // namespace lavin_fast::attention
