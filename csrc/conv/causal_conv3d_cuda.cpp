// CUDA registrations of causal_conv3d: the implicit-GEMM forward kernel (causal_conv3d_cuda_launch.cu)
// for bf16 / fp16; fp32 and the backward run the ATen composite (cuDNN convolutions on views).
#include <c10/core/DeviceGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/elem_type_of.h"
#include "conv/causal_conv3d_api.h"
#include "conv/causal_conv3d_cuda_launch.h"

namespace lavin_fast::conv {
namespace {

void fwd(const CausalConv3dParams& p, c10::ScalarType dtype) {
  const cudaError_t err = cuda::causal_conv3d_fwd(p, elem_type_of(dtype), c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "lavin_fast: launching the CUDA causal_conv3d kernel failed: ",
              cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

bool takes(c10::ScalarType t) { return t == c10::kBFloat16 || t == c10::kHalf; }

const Backend kCuda{&fwd, &takes};

c10::OptionalDeviceGuard guard_device_of(const at::Tensor& t) {
  return c10::OptionalDeviceGuard(t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt);
}

std::string_view view(c10::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CUDA, m) {
  m.impl("causal_conv3d", [](const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                             at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view tpad,
                             const std::optional<at::Tensor>& cache, bool return_cache) {
    const auto guard = guard_device_of(x);
    return causal_conv3d(kCuda, x, w, b, stride, padding, view(tpad), cache, return_cache);
  });
  m.impl("causal_conv3d_backward",
         [](const at::Tensor& gy, const std::optional<at::Tensor>& gc, const at::Tensor& x, const at::Tensor& w,
            bool has_bias, at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view tpad,
            const std::optional<at::Tensor>& cache) {
           const auto guard = guard_device_of(x);
           return causal_conv3d_backward(gy, gc, x, w, has_bias, stride, padding, view(tpad), cache);
         });
}

}  // namespace lavin_fast::conv
