// Host side of causal_conv3d, shared by the CPU and CUDA registrations: argument checks (all before
// any output exists), the geometry, the returned cache, and the choice between a backend's kernel and
// the ATen composite (causal_conv3d_aten.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string_view>
#include <tuple>

#include "conv/causal_conv3d_params.h"

namespace lavin_fast::conv {

struct Backend {
  // The forward kernel, or null: the ATen composite runs instead. It is called only for the dtypes
  // it takes (kernel_dtypes) with y allocated.
  void (*fwd)(const CausalConv3dParams&, c10::ScalarType);
  bool (*takes)(c10::ScalarType);
};


// x (N, C, T, H, W), weight (O, C, k_t, k_h, k_w), bias (O,), cache (N, C, k_t - 1, H, W)
//   -> y (N, O, T_out, H_out, W_out), new_cache (N, C, k_t - 1, H, W) or empty (0,)
std::tuple<at::Tensor, at::Tensor> causal_conv3d(const Backend& be, const at::Tensor& x,
                                                 const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                                 at::IntArrayRef stride, at::IntArrayRef padding,
                                                 std::string_view temporal_pad,
                                                 const std::optional<at::Tensor>& cache, bool return_cache);

// -> grad_x, grad_weight, grad_bias (empty unless has_bias), grad_cache (empty without cache)
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> causal_conv3d_backward(
    const at::Tensor& grad_y, const std::optional<at::Tensor>& grad_new_cache, const at::Tensor& x,
    const at::Tensor& weight, bool has_bias, at::IntArrayRef stride, at::IntArrayRef padding,
    std::string_view temporal_pad, const std::optional<at::Tensor>& cache);

}  // namespace lavin_fast::conv
