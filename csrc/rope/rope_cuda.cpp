// CUDA registrations of qk_norm_rope: the shared host side (rope_api.h) with a backend that launches the
// kernels of rope_cuda_launch.cu on the current stream. Mirrors rope_cpu_register.cpp.
#include <ATen/ops/empty.h>
#include <c10/core/DeviceGuard.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "common/elem_type_of.h"
#include "rope/rope_api.h"
#include "rope/rope_cuda_launch.h"
#include "rope/rope_plan.h"

namespace lavin_fast::rope {
namespace {

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "lavin_fast: launching the CUDA ", what, " kernels failed: ",
              cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

void fwd(const QkNormRopeFwdParams& p, c10::ScalarType dtype) {
  check_launch(cuda::qk_norm_rope_fwd(p, elem_type_of(dtype), c10::cuda::getCurrentCUDAStream()),
               "qk_norm_rope forward");
}

void bwd(const QkNormRopeBwdParams& p, c10::ScalarType dtype) {
  const ElemType type = elem_type_of(dtype);
  // grad_weight's partial rows. Freed when this returns, while the kernels may still run: safe, as the
  // caching allocator hands the block only to work ordered after them on this stream.
  const size_t bytes = cuda::qk_norm_rope_bwd_workspace_bytes(p, type);
  at::Tensor workspace;
  if (bytes > 0) {
    workspace = at::empty({static_cast<int64_t>(bytes)},
                          at::TensorOptions().dtype(at::kByte).device(at::kCUDA, c10::cuda::current_device()));
  }
  check_launch(cuda::qk_norm_rope_bwd(p, type, bytes > 0 ? workspace.data_ptr() : nullptr, bytes,
                                      c10::cuda::getCurrentCUDAStream()),
               "qk_norm_rope backward");
}

const Backend kCuda{&fwd, &bwd, /*max_width=*/rope_simt::kMaxWidth};

c10::OptionalDeviceGuard guard_device_of(const at::Tensor& t) {
  return c10::OptionalDeviceGuard(t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt);
}

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CUDA, m) {
  m.impl("qk_norm_rope", [](const at::Tensor& x, const std::optional<at::Tensor>& w, const at::Tensor& pos,
                            int64_t heads, double eps, at::IntArrayRef sections, at::ArrayRef<double> bases,
                            bool interleaved, bool normalize) {
    const auto guard = guard_device_of(x);
    return qk_norm_rope(kCuda, x, w, pos, heads, eps, sections, bases, interleaved, normalize);
  });
  m.impl("qk_norm_rope_backward",
         [](const at::Tensor& g, const at::Tensor& x, const std::optional<at::Tensor>& w, const at::Tensor& pos,
            const at::Tensor& rstd, int64_t heads, at::IntArrayRef sections, at::ArrayRef<double> bases,
            bool interleaved, bool normalize, bool gw) {
           const auto guard = guard_device_of(x);
           return qk_norm_rope_backward(kCuda, g, x, w, pos, rstd, heads, sections, bases, interleaved, normalize,
                                        gw);
         });
}

}  // namespace lavin_fast::rope
