// CUDA registrations of the RMSNorm family: the shared host side (rms_norm_api.h) with a backend that
// launches the kernels of rms_norm_cuda_launch.cu on the current stream. Mirrors
// rms_norm_cpu_register.cpp.
#include <ATen/ops/empty.h>
#include <c10/core/DeviceGuard.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <climits>
#include <optional>
#include <string_view>

#include "common/elem_type_of.h"
#include "norms/rms_norm_api.h"
#include "norms/rms_norm_cuda_launch.h"

namespace lavin_fast::norms {
namespace {

// What the launchers reject with cudaErrorInvalidValue, said properly. The host side only calls a
// backend with rows > 0.
void check_supported(const RmsNormFwdParams& p) {
  TORCH_CHECK_VALUE(p.dim <= INT_MAX, "lavin_fast: the CUDA RMSNorm kernels take D <= ", INT_MAX,
                    ", got D = ", p.dim);
  // Packed inputs: cu_seqlens values are not checked on CUDA (reading them would synchronise), but
  // (1,)-shaped cu_seqlens with tokens is visible from the shapes alone.
  TORCH_CHECK_VALUE(p.seg.num_segments >= 1, "lavin_fast: cu_seqlens describes 0 samples (shape (1,)) but ",
                    p.rows, " tokens were given");
}

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "lavin_fast: launching the CUDA ", what, " kernels failed: ",
              cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

void fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) {
  check_supported(p);
  check_launch(cuda::rms_norm_fwd(p, elem_type_of(dtype), c10::cuda::getCurrentCUDAStream()),
               "RMSNorm forward");
}

void bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) {
  check_supported(p);
  TORCH_INTERNAL_ASSERT(!p.grad_mult || p.mult, "rms_norm_bwd: grad_mult requested without mult");
  const ElemType type = elem_type_of(dtype);
  // The per-segment reductions' partial sums. Freed when this returns, while the kernels may still be
  // running: safe, as the caching allocator hands the block only to work ordered after them on this
  // stream (and the launchers use the current stream).
  const size_t bytes = cuda::rms_norm_bwd_workspace_bytes(p, type);
  at::Tensor workspace;
  if (bytes > 0) {
    workspace = at::empty({static_cast<int64_t>(bytes)},
                          at::TensorOptions().dtype(at::kByte).device(at::kCUDA, c10::cuda::current_device()));
  }
  check_launch(cuda::rms_norm_bwd(p, type, bytes > 0 ? workspace.data_ptr() : nullptr, bytes,
                                  c10::cuda::getCurrentCUDAStream()),
               "RMSNorm backward");
}

const Backend kCuda{&fwd, &bwd, /*validates_cu_seqlens=*/false};

// Allocations and launches go to the device of the op's main input. When that input is not on CUDA,
// the host side's device checks report it.
c10::OptionalDeviceGuard guard_device_of(const at::Tensor& t) {
  return c10::OptionalDeviceGuard(t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt);
}

std::string_view view(c10::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CUDA, m) {
  m.impl("rms_norm", [](const at::Tensor& x, const std::optional<at::Tensor>& w, double eps) {
    const auto guard = guard_device_of(x);
    return rms_norm(kCuda, x, w, eps);
  });
  m.impl("rms_norm_backward", [](const at::Tensor& g, const at::Tensor& x,
                                 const std::optional<at::Tensor>& w, const at::Tensor& rstd, bool gw) {
    const auto guard = guard_device_of(x);
    return rms_norm_backward(kCuda, g, x, w, rstd, gw);
  });
  m.impl("rms_norm_modulate",
         [](const at::Tensor& x, const at::Tensor& scale, const std::optional<at::Tensor>& shift,
            const std::optional<at::Tensor>& cu, double eps) {
           const auto guard = guard_device_of(x);
           return rms_norm_modulate(kCuda, x, scale, shift, cu, eps);
         });
  m.impl("rms_norm_modulate_backward",
         [](const at::Tensor& g, const at::Tensor& x, const at::Tensor& scale,
            const std::optional<at::Tensor>& cu, const at::Tensor& rstd, bool gs, bool gb) {
           const auto guard = guard_device_of(x);
           return rms_norm_modulate_backward(kCuda, g, x, scale, cu, rstd, gs, gb);
         });
  m.impl("gated_rms_residual",
         [](const at::Tensor& residual, const at::Tensor& y, const at::Tensor& gate,
            const std::optional<at::Tensor>& cu, double eps, c10::string_view act) {
           const auto guard = guard_device_of(y);
           return gated_rms_residual(kCuda, residual, y, gate, cu, eps, view(act));
         });
  m.impl("gated_rms_residual_backward",
         [](const at::Tensor& g, const at::Tensor& y, const at::Tensor& gate,
            const std::optional<at::Tensor>& cu, const at::Tensor& rstd, c10::string_view act, bool gg) {
           const auto guard = guard_device_of(y);
           return gated_rms_residual_backward(kCuda, g, y, gate, cu, rstd, view(act), gg);
         });
}

}  // namespace lavin_fast::norms
