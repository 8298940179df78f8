// The causal convolution from ATen convolutions on views of the unpadded input (any device, any
// floating dtype): the CPU kernel, the backward on every backend, and the CUDA forward for fp32.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "conv/causal_conv3d_geometry.h"

namespace lavin_fast::conv {

// x (N, C, T, H, W), weight (O, C, k_t, k_h, k_w), bias (O,), cache (N, C, k_t - 1, H, W) when
// g.pad == kCache  ->  y (N, O, T_out, H_out, W_out) in x's memory format.
at::Tensor aten_forward(const Geometry& g, const at::Tensor& x, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache);

// -> grad_x, grad_weight, grad_bias (empty (0,) unless has_bias), grad_cache (empty (0,) without cache).
// Gradients of the pieces accumulate in float32 for half-precision weights.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> aten_backward(
    const Geometry& g, const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, bool has_bias,
    const std::optional<at::Tensor>& cache);

}  // namespace lavin_fast::conv
