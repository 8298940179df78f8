// CPU registrations of causal_conv3d: the ATen composite (causal_conv3d_aten.cpp), or the CUDA forward
// kernel under the SIMT emulator while the backend switch (simt/mode.h, lavin_fast.simt) is on. The
// backward is the ATen composite on every backend.
#include <torch/library.h>

#include "conv/causal_conv3d_api.h"
#include "conv/causal_conv3d_simt.h"
#include "simt/mode.h"

namespace lavin_fast::conv {
namespace {

const Backend kAten{nullptr, nullptr};

const Backend& backend() { return lf::emu::mode().enabled ? simt_backend() : kAten; }

std::string_view view(c10::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

TORCH_LIBRARY_IMPL(lavin_fast, CPU, m) {
  m.impl("causal_conv3d", [](const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                             at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view tpad,
                             const std::optional<at::Tensor>& cache, bool return_cache) {
    return causal_conv3d(backend(), x, w, b, stride, padding, view(tpad), cache, return_cache);
  });
  m.impl("causal_conv3d_backward",
         [](const at::Tensor& gy, const std::optional<at::Tensor>& gc, const at::Tensor& x, const at::Tensor& w,
            bool has_bias, at::IntArrayRef stride, at::IntArrayRef padding, c10::string_view tpad,
            const std::optional<at::Tensor>& cache) {
           return causal_conv3d_backward(gy, gc, x, w, has_bias, stride, padding, view(tpad), cache);
         });
}

}  // namespace lavin_fast::conv
