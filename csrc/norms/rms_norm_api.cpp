#include "norms/rms_norm_api.h"

#include <ATen/ATen.h>

#include "common/alloc.h"
#include "common/check.h"

namespace lavin_fast::norms {
namespace {

constexpr const char* kRmsNorm = "lavin_fast.rms_norm";
constexpr const char* kRmsNormBwd = "lavin_fast.rms_norm_backward";
constexpr const char* kModulate = "lavin_fast.rms_norm_modulate";
constexpr const char* kModulateBwd = "lavin_fast.rms_norm_modulate_backward";
constexpr const char* kGated = "lavin_fast.gated_rms_residual";
constexpr const char* kGatedBwd = "lavin_fast.gated_rms_residual_backward";

void check_input(const char* op, const char* name, const at::Tensor& x) {
  check_float_dtype(op, name, x);
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.size(-1) >= 1, op, ": argument '", name,
                    "' must have a last dimension of size >= 1, got shape ", shape_str(x.sizes()));
}

void check_eps(const char* op, double eps) {
  TORCH_CHECK_VALUE(eps >= 0.0, op, ": argument 'eps' must be >= 0, got ", eps);
}

// Weights, scales, shifts and gates: x's dtype or fp32 (the kernels read them as fp32).
void check_param(const char* op, const char* name, const at::Tensor& p, const at::Tensor& x,
                 const char* x_name) {
  check_same_device(op, name, p, x, x_name);
  check_float_dtype(op, name, p);
  TORCH_CHECK_TYPE(p.scalar_type() == x.scalar_type() || p.scalar_type() == at::kFloat, op,
                   ": argument '", name, "' must have the dtype of '", x_name, "' (",
                   dtype_name(x.scalar_type()), ") or float32, got ", dtype_name(p.scalar_type()));
}

void check_like(const char* op, const char* name, const at::Tensor& t, const at::Tensor& ref,
                const char* ref_name) {
  check_same_device(op, name, t, ref, ref_name);
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": argument '", name,
                   "' must have the dtype of '", ref_name, "' (", dtype_name(ref.scalar_type()),
                   "), got ", dtype_name(t.scalar_type()));
  TORCH_CHECK_VALUE(t.sizes() == ref.sizes(), op, ": argument '", name, "' must have the shape of '",
                    ref_name, "' ", shape_str(ref.sizes()), ", got ", shape_str(t.sizes()));
}

void check_rstd(const char* op, const at::Tensor& rstd, const at::Tensor& x, const char* x_name) {
  check_same_device(op, "rstd", rstd, x, x_name);
  check_dtype(op, "rstd", rstd, {at::kFloat});
  check_shape(op, "rstd", rstd, x.sizes().slice(0, x.dim() - 1), "x.shape[:-1]");
  TORCH_CHECK_VALUE(rstd.is_contiguous(), op, ": argument 'rstd' must be contiguous");
}

// The per-sample layout of a modulated op: packed when cu_seqlens is given, padded otherwise.
struct SampleLayout {
  SegmentLayout seg;
  at::Tensor cu;  // keeps a contiguous copy of cu_seqlens alive
  const char* shape;  // how per-sample tensors must look
};

SampleLayout sample_layout(const char* op, const Backend& be, const char* x_name, const at::Tensor& x,
                           const std::optional<at::Tensor>& cu_seqlens) {
  SampleLayout l;
  if (cu_seqlens.has_value()) {
    check_dim(op, x_name, x, 2, "(T, D) when cu_seqlens is given");
    check_same_device(op, "cu_seqlens", *cu_seqlens, x, x_name);
    l.seg.num_segments = be.validates_cu_seqlens ? check_cu_seqlens(op, *cu_seqlens, x.size(0))
                                                 : (check_cu_seqlens_meta(op, *cu_seqlens),
                                                    cu_seqlens->size(0) - 1);
    l.cu = cu_seqlens->contiguous();
    l.seg.cu_seqlens = l.cu.const_data_ptr<int32_t>();
    l.shape = "(S, D) with S = len(cu_seqlens) - 1";
  } else {
    check_dim(op, x_name, x, 3, "(B, L, D) without cu_seqlens");
    l.seg.num_segments = x.size(0);
    l.seg.rows_per_segment = x.size(1);
    l.shape = "(B, D)";
  }
  return l;
}

void check_per_sample(const char* op, const char* name, const at::Tensor& p, const at::Tensor& x,
                      const char* x_name, const SampleLayout& l) {
  check_param(op, name, p, x, x_name);
  check_shape(op, name, p, {l.seg.num_segments, x.size(-1)}, l.shape);
}

at::Tensor empty_rstd(const at::Tensor& x) {
  return empty_output(x.sizes().slice(0, x.dim() - 1), x.options().dtype(at::kFloat));
}

at::Tensor none_grad(const at::Tensor& like) { return at::empty({0}, like.options()); }

void fill_forward(RmsNormFwdParams& p, const Rows& x, const at::Tensor& y, const at::Tensor& rstd,
                  double eps) {
  p.dim = x.t.size(-1);
  p.rows = x.t.numel() / p.dim;
  p.eps = static_cast<float>(eps);
  p.x = x.t.const_data_ptr();
  p.x_row_stride = x.stride;
  p.y = y.data_ptr();
  p.rstd = rstd.data_ptr<float>();
}

void fill_backward(RmsNormBwdParams& p, const Rows& x, const Rows& g, const at::Tensor& rstd,
                   const at::Tensor& grad_x) {
  p.dim = x.t.size(-1);
  p.rows = x.t.numel() / p.dim;
  p.x = x.t.const_data_ptr();
  p.x_row_stride = x.stride;
  p.grad_y = g.t.const_data_ptr();
  p.grad_y_row_stride = g.stride;
  p.saved_rstd = rstd.const_data_ptr<float>();
  p.grad_x = grad_x.data_ptr();
}

// What every backward shares: checks of the gradient, x and rstd, then grad_x and the params. The
// row views are kept alive with the params that point into them.
struct BackwardCall {
  Rows x, grad;
  at::Tensor grad_x;
  RmsNormBwdParams p;
};

BackwardCall prepare_backward(const char* op, const at::Tensor& grad, const char* grad_name,
                              const at::Tensor& x, const char* x_name, const at::Tensor& rstd) {
  check_input(op, x_name, x);
  check_like(op, grad_name, grad, x, x_name);
  check_rstd(op, rstd, x, x_name);
  BackwardCall c{as_rows(x), as_rows(grad), empty_output(x.sizes(), x.options()), {}};
  fill_backward(c.p, c.x, c.grad, rstd, c.grad_x);
  return c;
}

// fp32 accumulator of a per-sample gradient (S, D) when requested (its pointer goes to *slot), else
// an undefined tensor.
at::Tensor grad_buffer(bool requested, at::IntArrayRef sizes, const at::Tensor& like, float** slot) {
  if (!requested) return {};
  at::Tensor g = empty_output(sizes, like.options().dtype(at::kFloat));
  *slot = g.data_ptr<float>();
  return g;
}

// Runs the backward kernel. Without rows it does not run, and the requested per-sample gradients
// (sums over no rows) are zeros.
void run_backward(const Backend& be, const RmsNormBwdParams& p, at::ScalarType dtype,
                  std::initializer_list<at::Tensor*> grads) {
  if (p.rows > 0) {
    be.bwd(p, dtype);
    return;
  }
  for (at::Tensor* g : grads)
    if (g->defined()) g->zero_();
}

// The gradient in its parameter's dtype, or the empty placeholder when it was not requested.
at::Tensor finish_grad(const at::Tensor& g32, at::ScalarType dtype, const at::Tensor& like) {
  return g32.defined() ? g32.to(dtype) : none_grad(like);
}

// act(gate) as contiguous (S, D) rows (tanh keeps a strided gate's strides).
at::Tensor gate_activation(const at::Tensor& gate32, std::string_view act) {
  return (act == "tanh" ? gate32.tanh() : gate32).contiguous();
}

void check_gate_act(const char* op, std::string_view act) {
  TORCH_CHECK_VALUE(act == "tanh" || act == "none", op,
                    ": argument 'gate_act' must be \"tanh\" or \"none\", got \"", act, "\"");
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> rms_norm(const Backend& be, const at::Tensor& x,
                                            const std::optional<at::Tensor>& weight, double eps) {
  check_input(kRmsNorm, "x", x);
  check_eps(kRmsNorm, eps);
  if (weight.has_value()) {
    check_param(kRmsNorm, "weight", *weight, x, "x");
    check_shape(kRmsNorm, "weight", *weight, {x.size(-1)}, "(D,) with D = x.shape[-1]");
  }
  const Rows xr = as_rows(x);
  at::Tensor y = empty_output(x.sizes(), x.options());
  at::Tensor rstd = empty_rstd(x);
  RmsNormFwdParams p;
  fill_forward(p, xr, y, rstd, eps);
  at::Tensor w32;
  if (weight.has_value()) {
    w32 = weight->to(at::kFloat).contiguous();
    p.mult = w32.const_data_ptr<float>();
    p.mult_seg_stride = 0;
  }
  p.seg.num_segments = 1;
  p.seg.rows_per_segment = p.rows;
  if (p.rows > 0) be.fwd(p, x.scalar_type());
  return {y, rstd};
}

std::tuple<at::Tensor, at::Tensor> rms_norm_backward(const Backend& be, const at::Tensor& grad_y,
                                                     const at::Tensor& x,
                                                     const std::optional<at::Tensor>& weight,
                                                     const at::Tensor& rstd, bool weight_requires_grad) {
  BackwardCall c = prepare_backward(kRmsNormBwd, grad_y, "grad_y", x, "x", rstd);
  if (weight.has_value()) {
    check_param(kRmsNormBwd, "weight", *weight, x, "x");
    check_shape(kRmsNormBwd, "weight", *weight, {x.size(-1)}, "(D,) with D = x.shape[-1]");
  }
  TORCH_CHECK_VALUE(!weight_requires_grad || weight.has_value(), kRmsNormBwd,
                    ": weight_requires_grad=True needs a 'weight'");
  RmsNormBwdParams& p = c.p;
  p.seg.num_segments = 1;
  p.seg.rows_per_segment = p.rows;
  at::Tensor w32;
  if (weight.has_value()) {
    w32 = weight->to(at::kFloat).contiguous();
    p.mult = w32.const_data_ptr<float>();
    p.mult_seg_stride = 0;
  }
  at::Tensor gw32 = grad_buffer(weight_requires_grad, {1, x.size(-1)}, x, &p.grad_mult);
  run_backward(be, p, x.scalar_type(), {&gw32});
  if (gw32.defined()) gw32 = gw32.view({x.size(-1)});
  return {c.grad_x, finish_grad(gw32, weight_requires_grad ? weight->scalar_type() : x.scalar_type(), x)};
}

std::tuple<at::Tensor, at::Tensor> rms_norm_modulate(const Backend& be, const at::Tensor& x,
                                                     const at::Tensor& scale,
                                                     const std::optional<at::Tensor>& shift,
                                                     const std::optional<at::Tensor>& cu_seqlens,
                                                     double eps) {
  check_input(kModulate, "x", x);
  check_eps(kModulate, eps);
  const SampleLayout l = sample_layout(kModulate, be, "x", x, cu_seqlens);
  check_per_sample(kModulate, "scale", scale, x, "x", l);
  if (shift.has_value()) check_per_sample(kModulate, "shift", *shift, x, "x", l);

  const Rows xr = as_rows(x);
  at::Tensor y = empty_output(x.sizes(), x.options());
  at::Tensor rstd = empty_rstd(x);
  RmsNormFwdParams p;
  fill_forward(p, xr, y, rstd, eps);
  p.seg = l.seg;
  // (1 + scale) as contiguous (S, D) rows: add keeps a strided scale's strides.
  const at::Tensor mult = scale.to(at::kFloat).add(1.0).contiguous();
  p.mult = mult.const_data_ptr<float>();
  p.mult_seg_stride = p.dim;
  at::Tensor shift32;
  if (shift.has_value()) {
    shift32 = shift->to(at::kFloat).contiguous();
    p.shift = shift32.const_data_ptr<float>();
  }
  if (p.rows > 0) be.fwd(p, x.scalar_type());
  return {y, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> rms_norm_modulate_backward(
    const Backend& be, const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& scale,
    const std::optional<at::Tensor>& cu_seqlens, const at::Tensor& rstd, bool scale_requires_grad,
    bool shift_requires_grad) {
  BackwardCall c = prepare_backward(kModulateBwd, grad_y, "grad_y", x, "x", rstd);
  const SampleLayout l = sample_layout(kModulateBwd, be, "x", x, cu_seqlens);
  check_per_sample(kModulateBwd, "scale", scale, x, "x", l);
  RmsNormBwdParams& p = c.p;
  p.seg = l.seg;
  const at::Tensor mult = scale.to(at::kFloat).add(1.0).contiguous();
  p.mult = mult.const_data_ptr<float>();
  p.mult_seg_stride = p.dim;
  at::Tensor gs32 = grad_buffer(scale_requires_grad, scale.sizes(), x, &p.grad_mult);
  at::Tensor gb32 = grad_buffer(shift_requires_grad, scale.sizes(), x, &p.grad_shift);
  run_backward(be, p, x.scalar_type(), {&gs32, &gb32});
  // The shift's dtype is not an argument: its gradient takes the scale's dtype, which the Python
  // layer casts to the shift's own dtype when they differ.
  return {c.grad_x, finish_grad(gs32, scale.scalar_type(), x), finish_grad(gb32, scale.scalar_type(), x)};
}

std::tuple<at::Tensor, at::Tensor> gated_rms_residual(const Backend& be, const at::Tensor& residual,
                                                      const at::Tensor& y, const at::Tensor& gate,
                                                      const std::optional<at::Tensor>& cu_seqlens,
                                                      double eps, std::string_view gate_act) {
  check_input(kGated, "y", y);
  check_eps(kGated, eps);
  check_gate_act(kGated, gate_act);
  check_like(kGated, "residual", residual, y, "y");
  const SampleLayout l = sample_layout(kGated, be, "y", y, cu_seqlens);
  check_per_sample(kGated, "gate", gate, y, "y", l);

  const Rows yr = as_rows(y), rr = as_rows(residual);
  at::Tensor out = empty_output(y.sizes(), y.options());
  at::Tensor rstd = empty_rstd(y);
  RmsNormFwdParams p;
  fill_forward(p, yr, out, rstd, eps);
  p.seg = l.seg;
  const at::Tensor mult = gate_activation(gate.to(at::kFloat), gate_act);
  p.mult = mult.const_data_ptr<float>();
  p.mult_seg_stride = p.dim;
  p.residual = rr.t.const_data_ptr();
  p.residual_row_stride = rr.stride;
  if (p.rows > 0) be.fwd(p, y.scalar_type());
  return {out, rstd};
}

std::tuple<at::Tensor, at::Tensor> gated_rms_residual_backward(
    const Backend& be, const at::Tensor& grad_out, const at::Tensor& y, const at::Tensor& gate,
    const std::optional<at::Tensor>& cu_seqlens, const at::Tensor& rstd, std::string_view gate_act,
    bool gate_requires_grad) {
  check_gate_act(kGatedBwd, gate_act);
  BackwardCall c = prepare_backward(kGatedBwd, grad_out, "grad_out", y, "y", rstd);
  const SampleLayout l = sample_layout(kGatedBwd, be, "y", y, cu_seqlens);
  check_per_sample(kGatedBwd, "gate", gate, y, "y", l);
  RmsNormBwdParams& p = c.p;
  p.seg = l.seg;
  const at::Tensor mult = gate_activation(gate.to(at::kFloat), gate_act);
  p.mult = mult.const_data_ptr<float>();
  p.mult_seg_stride = p.dim;
  at::Tensor gg32 = grad_buffer(gate_requires_grad, gate.sizes(), y, &p.grad_mult);
  run_backward(be, p, y.scalar_type(), {&gg32});
  // d tanh(g) / dg = 1 - tanh(g)^2, with tanh(g) = mult
  if (gg32.defined() && gate_act == "tanh") gg32.mul_((mult * mult).neg_().add_(1.0));
  return {c.grad_x, finish_grad(gg32, gate.scalar_type(), y)};
}

}  // namespace lavin_fast::norms
