// CPU registrations of qk_norm_rope: the CPU kernels, or the CUDA kernels under the SIMT emulator while
// the backend switch (simt/mode.h, lavin_fast.simt in Python) is on.
#include <torch/library.h>

#include "rope/rope_api.h"
#include "rope/rope_cpu.h"
#include "rope/rope_simt.h"
#include "simt/mode.h"

namespace lavin_fast::rope {
namespace {

const Backend kCpuKernels{&cpu::qk_norm_rope_fwd, &cpu::qk_norm_rope_bwd, /*max_width=*/0};

const Backend& backend() { return lf::emu::mode().enabled ? simt_backend() : kCpuKernels; }

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CPU, m) {
  m.impl("qk_norm_rope", [](const at::Tensor& x, const std::optional<at::Tensor>& w, const at::Tensor& pos,
                            int64_t heads, double eps, at::IntArrayRef sections, at::ArrayRef<double> bases,
                            bool interleaved, bool normalize) {
    return qk_norm_rope(backend(), x, w, pos, heads, eps, sections, bases, interleaved, normalize);
  });
  m.impl("qk_norm_rope_backward",
         [](const at::Tensor& g, const at::Tensor& x, const std::optional<at::Tensor>& w, const at::Tensor& pos,
            const at::Tensor& rstd, int64_t heads, at::IntArrayRef sections, at::ArrayRef<double> bases,
            bool interleaved, bool normalize, bool gw) {
           return qk_norm_rope_backward(backend(), g, x, w, pos, rstd, heads, sections, bases, interleaved,
                                        normalize, gw);
         });
}

}  // namespace lavin_fast::rope
