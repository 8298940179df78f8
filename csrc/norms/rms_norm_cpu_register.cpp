// CPU registrations of the RMSNorm family: the CPU kernels, or the CUDA kernels under the SIMT
// emulator while the backend switch (simt/mode.h, lavin_fast.simt in Python) is on.
#include <torch/library.h>

#include "norms/rms_norm_api.h"
#include "norms/rms_norm_cpu.h"
#include "norms/rms_norm_simt.h"
#include "simt/mode.h"

namespace lavin_fast::norms {
namespace {

const Backend kCpuKernels{&cpu::rms_norm_fwd, &cpu::rms_norm_bwd, /*validates_cu_seqlens=*/true};

const Backend& backend() { return lf::emu::mode().enabled ? simt_backend() : kCpuKernels; }

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CPU, m) {
  m.impl("rms_norm", [](const at::Tensor& x, const std::optional<at::Tensor>& w, double eps) {
    return rms_norm(backend(), x, w, eps);
  });
  m.impl("rms_norm_backward", [](const at::Tensor& g, const at::Tensor& x,
                                 const std::optional<at::Tensor>& w, const at::Tensor& rstd, bool gw) {
    return rms_norm_backward(backend(), g, x, w, rstd, gw);
  });
  m.impl("rms_norm_modulate",
         [](const at::Tensor& x, const at::Tensor& scale, const std::optional<at::Tensor>& shift,
            const std::optional<at::Tensor>& cu, double eps) {
           return rms_norm_modulate(backend(), x, scale, shift, cu, eps);
         });
  m.impl("rms_norm_modulate_backward",
         [](const at::Tensor& g, const at::Tensor& x, const at::Tensor& scale,
            const std::optional<at::Tensor>& cu, const at::Tensor& rstd, bool gs, bool gb) {
           return rms_norm_modulate_backward(backend(), g, x, scale, cu, rstd, gs, gb);
         });
  m.impl("gated_rms_residual",
         [](const at::Tensor& residual, const at::Tensor& y, const at::Tensor& gate,
            const std::optional<at::Tensor>& cu, double eps, c10::string_view act) {
           return gated_rms_residual(backend(), residual, y, gate, cu, eps, std::string_view(act.data(), act.size()));
         });
  m.impl("gated_rms_residual_backward",
         [](const at::Tensor& g, const at::Tensor& y, const at::Tensor& gate,
            const std::optional<at::Tensor>& cu, const at::Tensor& rstd, c10::string_view act, bool gg) {
           return gated_rms_residual_backward(backend(), g, y, gate, cu, rstd,
                                              std::string_view(act.data(), act.size()), gg);
         });
}

}  // namespace lavin_fast::norms
