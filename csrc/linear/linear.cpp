// y = x W^T + b as an op of its own, so lavin_fast's modules get the fastest fp32 GEMM on each device
// rather than the one at::linear picks. On the CPU at::linear's fp32 path is MKL's sgemm, which takes
// its AVX2 code on non-Intel processors: on this project's AMD machines (AVX-512 with full-width FMA)
// it runs at ~180 GFLOP/s where oneDNN's inner product, reached through the mkldnn::_linear_pointwise
// op that ships with PyTorch, runs at ~420 (bench/bench_linear.py). The backward's two products go to
// oneDNN too, as inner products over transposed views (oneDNN reads the strides; nothing is copied).
// Every other case (other dtypes, devices, a PyTorch built without oneDNN) is at::linear / at::mm.
//
// This is dispatch, not a hand-written kernel: on CUDA, cuBLAS is the right GEMM.
#include <ATen/ATen.h>
#include <c10/util/accumulate.h>
#include <torch/library.h>

#include <optional>
#include <string_view>

#include "common/check.h"
#include "common/torch_op.h"

namespace lavin_fast::linear {
namespace {

constexpr const char* kOp = "lavin_fast.linear";

using PointwiseFn = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                               std::string_view, c10::List<std::optional<at::Scalar>>,
                               std::optional<std::string_view>);

// PyTorch's oneDNN inner product, or nullopt when this build of PyTorch has none.
const std::optional<c10::TypedOperatorHandle<PointwiseFn>>& onednn_linear() {
  static const auto op = find_op<PointwiseFn>("mkldnn::_linear_pointwise");
  return op;
}

bool use_onednn(const at::Tensor& a) {
  return a.is_cpu() && a.scalar_type() == at::kFloat && at::globalContext().userEnabledMkldnn() &&
         onednn_linear().has_value();
}

// a (M, K) @ b (N, K)^T (+ bias) -> (M, N); a, b and bias may be any strided views.
at::Tensor inner_product(const at::Tensor& a, const at::Tensor& b, const std::optional<at::Tensor>& bias) {
  if (a.size(0) == 0 || b.size(0) == 0 || a.size(1) == 0) {  // oneDNN wants non-empty operands
    at::Tensor y = at::zeros({a.size(0), b.size(0)}, a.options());
    return bias ? y.add_(*bias) : y;
  }
  if (use_onednn(a)) {
    // oneDNN reads a and b by their strides but the bias as dense (N,) whatever its strides (a sliced
    // bias gave wrong sums, an expanded one read past its storage): a copy of N elements at most.
    const std::optional<at::Tensor> dense_bias = bias ? std::optional<at::Tensor>(bias->contiguous()) : std::nullopt;
    return onednn_linear()->call(a, b, dense_bias, "none", c10::List<std::optional<at::Scalar>>(), std::nullopt);
  }
  return bias ? at::addmm(*bias, a, b.t()) : at::mm(a, b.t());
}

void check_args(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() >= 1, kOp, ": x must have at least 1 dimension (..., in_features), got ", shape_str(x.sizes()));
  check_dim(kOp, "weight", weight, 2, "(out_features, in_features)");
  check_dtype(kOp, "x", x, {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble});
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), kOp, ": weight must have x's dtype ",
              dtype_name(x.scalar_type()), ", got ", dtype_name(weight.scalar_type()));
  check_same_device(kOp, "weight", weight, x, "x");
  TORCH_CHECK(x.size(-1) == weight.size(1), kOp, ": x's last dimension must equal weight.shape[1] = ",
              weight.size(1), " (in_features), got x of shape ", shape_str(x.sizes()));
  if (bias) {
    check_shape(kOp, "bias", *bias, {weight.size(0)}, "(out_features,)");
    TORCH_CHECK(bias->scalar_type() == x.scalar_type(), kOp, ": bias must have x's dtype ",
                dtype_name(x.scalar_type()), ", got ", dtype_name(bias->scalar_type()));
    check_same_device(kOp, "bias", *bias, x, "x");
  }
}

// x as (rows, in_features). Spelled out, not reshape({-1, in}): -1 is ambiguous when in_features is 0.
at::Tensor rows_of(const at::Tensor& x) {
  const int64_t k = x.size(-1);
  return x.reshape({c10::multiply_integers(x.sizes().begin(), x.sizes().end() - 1), k});
}

std::vector<int64_t> out_shape(const at::Tensor& x, int64_t n) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = n;
  return shape;
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_args(x, weight, bias);
  return inner_product(rows_of(x), weight, bias).view(out_shape(x, weight.size(0)));
}

// -> grad_x (x's shape), grad_weight, grad_bias (each empty (0,) when its mask bit is off).
std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                               const at::Tensor& weight,
                                                               std::array<bool, 3> mask) {
  check_args(x, weight, std::nullopt);
  const std::vector<int64_t> y_shape = out_shape(x, weight.size(0));
  check_shape("lavin_fast.linear_backward", "grad_y", grad_y, y_shape, "(..., out_features)");
  TORCH_CHECK(grad_y.scalar_type() == x.scalar_type(), "lavin_fast.linear_backward: grad_y must have x's dtype ",
              dtype_name(x.scalar_type()), ", got ", dtype_name(grad_y.scalar_type()));
  const at::Tensor g2 = rows_of(grad_y);
  const at::Tensor x2 = rows_of(x);
  const auto none = [&] { return at::empty({0}, x.options()); };  // distinct tensors: outputs must not alias
  // grad_x = g W: an inner product with W^T (in, out); grad_W = g^T x: with x^T (in, rows).
  at::Tensor gx = mask[0] ? inner_product(g2, weight.t(), std::nullopt).view(x.sizes()) : none();
  at::Tensor gw = mask[1] ? inner_product(g2.t(), x2.t(), std::nullopt) : none();
  at::Tensor gb = mask[2] ? g2.sum(0, false, x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat)
                                .to(x.scalar_type())
                          : none();
  return {gx, gw, gb};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  // x (..., in), weight (out, in), bias (out,) -> (..., out)
  m.def("linear(Tensor x, Tensor weight, Tensor? bias) -> Tensor");
  // -> grad_x, grad_weight, grad_bias; a gradient whose output_mask bit is off is empty (0,).
  m.def("linear_backward(Tensor grad_y, Tensor x, Tensor weight, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(lavin_fast, CPU, m) {
  m.impl("linear", &linear);
  m.impl("linear_backward", &linear_backward);
}

TORCH_LIBRARY_IMPL(lavin_fast, CUDA, m) {
  m.impl("linear", &linear);
  m.impl("linear_backward", &linear_backward);
}

}  // namespace lavin_fast::linear
