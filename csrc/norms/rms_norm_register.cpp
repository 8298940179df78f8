// The RMSNorm family's registrations: its schemas; its backends (rms_norm_api.h's Backend): the CPU
// kernels, the CUDA kernels under the SIMT emulator (on CPU tensors), the CUDA kernels (CUDA builds);
// and the same functions (the shared host side) under CPU and CUDA: on CPU with the CPU kernels, or simt
// while the backend switch (lavin_fast.simt) is on; on CUDA with the CUDA kernels, on the device of the
// op's main input.
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "common/backend.h"
#include "norms/rms_norm_api.h"
#include "norms/rms_norm_cpu.h"
#include "norms/rms_norm_simt_launch.h"

#ifdef LAVIN_FAST_WITH_CUDA
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <climits>

#include "norms/rms_norm_cuda_launch.h"
#endif

// Each forward also returns rstd (fp32, x.shape[:-1]) for the backward.
TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  m.def("rms_norm(Tensor x, Tensor? weight, float eps) -> (Tensor, Tensor)");
  m.def(
      "rms_norm_backward(Tensor grad_y, Tensor x, Tensor? weight, Tensor rstd, "
      "bool weight_requires_grad) -> (Tensor, Tensor)");
  m.def(
      "rms_norm_modulate(Tensor x, Tensor scale, Tensor? shift, Tensor? cu_seqlens, float eps) "
      "-> (Tensor, Tensor)");
  m.def(
      "rms_norm_modulate_backward(Tensor grad_y, Tensor x, Tensor scale, Tensor? cu_seqlens, "
      "Tensor rstd, bool scale_requires_grad, bool shift_requires_grad) -> (Tensor, Tensor, Tensor)");
  m.def(
      "gated_rms_residual(Tensor residual, Tensor y, Tensor gate, Tensor? cu_seqlens, float eps, "
      "str gate_act) -> (Tensor, Tensor)");
  m.def(
      "gated_rms_residual_backward(Tensor grad_out, Tensor y, Tensor gate, Tensor? cu_seqlens, "
      "Tensor rstd, str gate_act, bool gate_requires_grad) -> (Tensor, Tensor)");
}

namespace lavin_fast::norms {
namespace {

// ---- simt: the CUDA kernels under the SIMT emulator, on CPU tensors

namespace simt_impl {

void fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) {
  run_simt("RMSNorm forward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::rms_norm_fwd(p, elem_type_of(dtype), s, seed);
  });
}

void bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) {
  run_simt("RMSNorm backward (simt)", [&](lf::emu::Schedule s, uint64_t seed) {
    return simt::rms_norm_bwd(p, elem_type_of(dtype), s, seed);
  });
}

}  // namespace simt_impl

const Backend& simt_backend() {
  // Host-side CPU tensors: cu_seqlens values are validated like the CPU backend's.
  static const Backend kSimt{&simt_impl::fwd, &simt_impl::bwd, /*validates_cu_seqlens=*/true};
  return kSimt;
}

#ifdef LAVIN_FAST_WITH_CUDA
// ---- cuda: the CUDA kernels on the current stream

namespace cuda_impl {

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

}  // namespace cuda_impl

const Backend& cuda_backend() {
  // cu_seqlens values stay on the device (reading them would synchronise): shape and dtype only.
  static const Backend kCuda{&cuda_impl::fwd, &cuda_impl::bwd, /*validates_cu_seqlens=*/false};
  return kCuda;
}
#endif  // LAVIN_FAST_WITH_CUDA

// ---- cpu

const Backend kCpuKernels{&cpu::rms_norm_fwd, &cpu::rms_norm_bwd, /*validates_cu_seqlens=*/true};

const Backend& cpu_backend() { return cpu_or_simt(kCpuKernels, simt_backend()); }

// The family's functions on the kernels of be().
template <const Backend& (*be)()>
void impl_all(torch::Library& m) {
  m.impl("rms_norm", [](const at::Tensor& x, const std::optional<at::Tensor>& w, double eps) {
    const auto guard = guard_device_of(x);
    return rms_norm(be(), x, w, eps);
  });
  m.impl("rms_norm_backward", [](const at::Tensor& g, const at::Tensor& x,
                                 const std::optional<at::Tensor>& w, const at::Tensor& rstd, bool gw) {
    const auto guard = guard_device_of(x);
    return rms_norm_backward(be(), g, x, w, rstd, gw);
  });
  m.impl("rms_norm_modulate",
         [](const at::Tensor& x, const at::Tensor& scale, const std::optional<at::Tensor>& shift,
            const std::optional<at::Tensor>& cu, double eps) {
           const auto guard = guard_device_of(x);
           return rms_norm_modulate(be(), x, scale, shift, cu, eps);
         });
  m.impl("rms_norm_modulate_backward",
         [](const at::Tensor& g, const at::Tensor& x, const at::Tensor& scale,
            const std::optional<at::Tensor>& cu, const at::Tensor& rstd, bool gs, bool gb) {
           const auto guard = guard_device_of(x);
           return rms_norm_modulate_backward(be(), g, x, scale, cu, rstd, gs, gb);
         });
  m.impl("gated_rms_residual",
         [](const at::Tensor& residual, const at::Tensor& y, const at::Tensor& gate,
            const std::optional<at::Tensor>& cu, double eps, c10::string_view act) {
           const auto guard = guard_device_of(y);
           return gated_rms_residual(be(), residual, y, gate, cu, eps, std_view(act));
         });
  m.impl("gated_rms_residual_backward",
         [](const at::Tensor& g, const at::Tensor& y, const at::Tensor& gate,
            const std::optional<at::Tensor>& cu, const at::Tensor& rstd, c10::string_view act, bool gg) {
           const auto guard = guard_device_of(y);
           return gated_rms_residual_backward(be(), g, y, gate, cu, rstd, std_view(act), gg);
         });
}

}  // namespace

LAVIN_FAST_IMPL_CPU_AND_CUDA(impl_all)

}  // namespace lavin_fast::norms
