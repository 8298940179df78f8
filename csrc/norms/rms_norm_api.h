// Host side of the RMSNorm family, shared by the CPU and CUDA registrations: argument checks (all of
// them before any output exists), fp32 preparation of the small per-sample tensors, output allocation,
// and the call into a backend's kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string_view>
#include <tuple>

#include "norms/norm_params.h"

namespace lavin_fast::norms {

struct Backend {
  void (*fwd)(const RmsNormFwdParams&, c10::ScalarType);
  void (*bwd)(const RmsNormBwdParams&, c10::ScalarType);
  // cu_seqlens values can be validated on the host (CPU tensors); the CUDA backend checks only their
  // shape and dtype, as reading them would synchronise the device.
  bool validates_cu_seqlens;
};


// x (..., D), weight (D,) or none  ->  y (..., D), rstd (...) fp32
std::tuple<at::Tensor, at::Tensor> rms_norm(const Backend& be, const at::Tensor& x,
                                            const std::optional<at::Tensor>& weight, double eps);
// -> grad_x, grad_weight (empty (0,) unless weight_requires_grad)
std::tuple<at::Tensor, at::Tensor> rms_norm_backward(const Backend& be, const at::Tensor& grad_y,
                                                     const at::Tensor& x,
                                                     const std::optional<at::Tensor>& weight,
                                                     const at::Tensor& rstd, bool weight_requires_grad);

// padded: x (B, L, D), scale/shift (B, D); packed: x (T, D), cu_seqlens (S + 1,), scale/shift (S, D)
std::tuple<at::Tensor, at::Tensor> rms_norm_modulate(const Backend& be, const at::Tensor& x,
                                                     const at::Tensor& scale,
                                                     const std::optional<at::Tensor>& shift,
                                                     const std::optional<at::Tensor>& cu_seqlens,
                                                     double eps);
// -> grad_x, grad_scale, grad_shift (empty (0,) when not requested)
std::tuple<at::Tensor, at::Tensor, at::Tensor> rms_norm_modulate_backward(
    const Backend& be, const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& scale,
    const std::optional<at::Tensor>& cu_seqlens, const at::Tensor& rstd, bool scale_requires_grad,
    bool shift_requires_grad);

// out = residual + act(gate) * rms(y); same layouts as rms_norm_modulate, gate_act "tanh" or "none"
std::tuple<at::Tensor, at::Tensor> gated_rms_residual(const Backend& be, const at::Tensor& residual,
                                                      const at::Tensor& y, const at::Tensor& gate,
                                                      const std::optional<at::Tensor>& cu_seqlens,
                                                      double eps, std::string_view gate_act);
// -> grad_y, grad_gate (empty (0,) unless gate_requires_grad); grad_residual is grad_out itself
std::tuple<at::Tensor, at::Tensor> gated_rms_residual_backward(
    const Backend& be, const at::Tensor& grad_out, const at::Tensor& y, const at::Tensor& gate,
    const std::optional<at::Tensor>& cu_seqlens, const at::Tensor& rstd, std::string_view gate_act,
    bool gate_requires_grad);

}  // namespace lavin_fast::norms
