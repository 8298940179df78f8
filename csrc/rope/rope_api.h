// Host side of the fused QK RMSNorm + 3-D RoPE op, shared by the CPU and CUDA registrations: argument
// checks (all of them before any output exists), the rotation tables, output allocation, and the call
// into a backend's kernels.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "rope/rope_params.h"

namespace lavin_fast::rope {

struct Backend {
  void (*fwd)(const QkNormRopeFwdParams&, c10::ScalarType);
  void (*bwd)(const QkNormRopeBwdParams&, c10::ScalarType);
  // The widest row (W) the backend takes, or 0 for any; the CUDA kernels stage a row in shared memory.
  int64_t max_width;
};


// x (..., W), weight (W,) or none, positions (..., 3) int32/int64 (t, h, w); W = num_heads * head_dim.
// sections: [] (equal thirds) or 3 even sizes summing to head_dim; bases: 1 or 3 values.
// -> y (..., W) contiguous (heads of head_dim consecutive), rstd (...) fp32 (ones without normalize)
std::tuple<at::Tensor, at::Tensor> qk_norm_rope(const Backend& be, const at::Tensor& x,
                                                const std::optional<at::Tensor>& weight,
                                                const at::Tensor& positions, int64_t num_heads, double eps,
                                                at::IntArrayRef sections, at::ArrayRef<double> bases,
                                                bool interleaved, bool normalize);

// -> grad_x (..., W), grad_weight (W,) (empty (0,) unless weight_requires_grad)
std::tuple<at::Tensor, at::Tensor> qk_norm_rope_backward(
    const Backend& be, const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const at::Tensor& positions, const at::Tensor& rstd, int64_t num_heads, at::IntArrayRef sections,
    at::ArrayRef<double> bases, bool interleaved, bool normalize, bool weight_requires_grad);

}  // namespace lavin_fast::rope
