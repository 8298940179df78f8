#include "rope/rope_api.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/alloc.h"
#include "common/check.h"

namespace lavin_fast::rope {
namespace {

constexpr const char* kFwd = "lavin_fast.qk_norm_rope";
constexpr const char* kBwd = "lavin_fast.qk_norm_rope_backward";

// Everything the checks establish about one call: the geometry, the tables and the converted small
// tensors the params point into (kept alive here).
struct Prepared {
  RopeTables tables;
  at::Tensor weight32;  // (W,) fp32 or undefined
  at::Tensor pos32;     // (rows, 3) int32 contiguous
};

void check_x(const char* op, const at::Tensor& x, int64_t num_heads, const Backend& be) {
  check_float_dtype(op, "x", x);
  TORCH_CHECK_VALUE(x.dim() >= 1 && x.size(-1) >= 1, op,
                    ": argument 'x' must have a last dimension of size >= 1 (num_heads * head_dim), got shape ",
                    shape_str(x.sizes()));
  TORCH_CHECK_VALUE(num_heads >= 1, op, ": argument 'num_heads' must be >= 1, got ", num_heads);
  const int64_t w = x.size(-1);
  TORCH_CHECK_VALUE(w % num_heads == 0, op, ": argument 'num_heads' (", num_heads,
                    ") must divide x.shape[-1] = ", w, " (the projected width num_heads * head_dim)");
  const int64_t d = w / num_heads;
  TORCH_CHECK_VALUE(d % 2 == 0 && d <= kRopeMaxHeadDim, op, ": head_dim = x.shape[-1] / num_heads = ", d,
                    " must be even and <= ", kRopeMaxHeadDim);
  TORCH_CHECK_VALUE(be.max_width == 0 || w <= be.max_width, op, ": this backend takes x.shape[-1] <= ",
                    be.max_width, ", got ", w);
}

// The kernels take int32 positions (any int32 value is a true rotation: rope_angle.h); int64 ones are
// converted, so values outside int32 are refused rather than wrapped. Checked on the CPU only: on a
// GPU reading the values would synchronise the device, so there int64 positions must be in range.
void check_positions_range(const char* op, const at::Tensor& positions) {
  if (positions.scalar_type() != at::kLong || positions.numel() == 0 || !positions.device().is_cpu()) return;
  const auto [lo_t, hi_t] = at::aminmax(positions);
  const int64_t lo = lo_t.item<int64_t>(), hi = hi_t.item<int64_t>();
  constexpr int64_t kMin = std::numeric_limits<int32_t>::min(), kMax = std::numeric_limits<int32_t>::max();
  TORCH_CHECK_VALUE(lo >= kMin && hi <= kMax, op, ": argument 'positions' must hold values in [", kMin, ", ", kMax,
                    "] (int32: the kernels take int32 positions), got values in [", lo, ", ", hi, "]");
}

// The rotation pairs of a head (rope_params.h), inv_freq in double.
RopeTables make_tables(const char* op, int64_t head_dim, at::IntArrayRef sections, at::ArrayRef<double> bases,
                       bool interleaved) {
  int64_t s[3];
  if (sections.empty()) {
    TORCH_CHECK_VALUE(head_dim % 6 == 0, op, ": head_dim = ", head_dim,
                      " is not a multiple of 6, so it has no default split into three even sections: "
                      "pass 'sections' (3 even sizes summing to head_dim)");
    s[0] = s[1] = s[2] = head_dim / 3;
  } else {
    TORCH_CHECK_VALUE(sections.size() == 3, op, ": argument 'sections' must have 3 entries (t, h, w), got ",
                      sections.size());
    for (int a = 0; a < 3; ++a) {
      TORCH_CHECK_VALUE(sections[a] >= 0 && sections[a] % 2 == 0, op,
                        ": argument 'sections' must hold even sizes >= 0, got sections[", a, "] = ", sections[a]);
      s[a] = sections[a];
    }
    TORCH_CHECK_VALUE(s[0] + s[1] + s[2] == head_dim, op, ": argument 'sections' must sum to head_dim = ",
                      head_dim, ", got ", s[0], " + ", s[1], " + ", s[2], " = ", s[0] + s[1] + s[2]);
  }
  TORCH_CHECK_VALUE(bases.size() == 1 || bases.size() == 3, op,
                    ": argument 'bases' must have 1 or 3 entries, got ", bases.size());
  for (double b : bases) {
    TORCH_CHECK_VALUE(std::isfinite(b) && b > 0.0, op, ": argument 'bases' must be finite and > 0, got ", b);
  }
  RopeTables t;
  t.head_dim = static_cast<int>(head_dim);
  t.num_pairs = static_cast<int>(head_dim / 2);
  t.interleaved = interleaved;
  int pair = 0, col = 0;
  for (int a = 0; a < 3; ++a) {
    t.pair_begin[a] = pair;
    t.col_begin[a] = col;
    const double base = bases[bases.size() == 3 ? a : 0];
    for (int64_t i = 0; i < s[a] / 2; ++i, ++pair) {
      t.inv_freq[pair] = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(s[a]));
    }
    col += static_cast<int>(s[a]);
  }
  t.pair_begin[3] = pair;
  t.col_begin[3] = col;
  return t;
}

Prepared prepare(const char* op, const Backend& be, const at::Tensor& x, const std::optional<at::Tensor>& weight,
                 const at::Tensor& positions, int64_t num_heads, at::IntArrayRef sections,
                 at::ArrayRef<double> bases, bool interleaved) {
  check_x(op, x, num_heads, be);
  Prepared pr;
  pr.tables = make_tables(op, x.size(-1) / num_heads, sections, bases, interleaved);
  if (weight.has_value()) {
    check_same_device(op, "weight", *weight, x, "x");
    check_float_dtype(op, "weight", *weight);
    TORCH_CHECK_TYPE(weight->scalar_type() == x.scalar_type() || weight->scalar_type() == at::kFloat, op,
                     ": argument 'weight' must have the dtype of 'x' (", dtype_name(x.scalar_type()),
                     ") or float32, got ", dtype_name(weight->scalar_type()));
    check_shape(op, "weight", *weight, {x.size(-1)}, "(W,) with W = x.shape[-1]");
  }
  check_same_device(op, "positions", positions, x, "x");
  check_dtype(op, "positions", positions, {at::kInt, at::kLong});
  std::vector<int64_t> pshape(x.sizes().begin(), x.sizes().end() - 1);
  pshape.push_back(3);
  check_shape(op, "positions", positions, pshape, "x.shape[:-1] + (3,), (t, h, w) per token");
  check_positions_range(op, positions);
  // Outputs come after every check; only then the (small) conversions.
  if (weight.has_value()) pr.weight32 = weight->to(at::kFloat).contiguous();
  pr.pos32 = positions.to(at::kInt).contiguous();
  return pr;
}

void fill(QkNormRopeFwdParams& p, const Prepared& pr, const Rows& x, int64_t num_heads, double eps, bool normalize) {
  p.width = x.t.size(-1);
  p.rows = x.t.numel() / p.width;
  p.num_heads = num_heads;
  p.eps = static_cast<float>(eps);
  p.normalize = normalize;
  p.rope = pr.tables;
  p.x = x.t.const_data_ptr();
  p.x_row_stride = x.stride;
  p.weight = pr.weight32.defined() ? pr.weight32.const_data_ptr<float>() : nullptr;
  p.positions = pr.pos32.const_data_ptr<int32_t>();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> qk_norm_rope(const Backend& be, const at::Tensor& x,
                                                const std::optional<at::Tensor>& weight,
                                                const at::Tensor& positions, int64_t num_heads, double eps,
                                                at::IntArrayRef sections, at::ArrayRef<double> bases,
                                                bool interleaved, bool normalize) {
  TORCH_CHECK_VALUE(eps >= 0.0, kFwd, ": argument 'eps' must be >= 0, got ", eps);
  const Prepared pr = prepare(kFwd, be, x, weight, positions, num_heads, sections, bases, interleaved);
  const Rows xr = as_rows(x);
  at::Tensor y = empty_output(x.sizes(), x.options());
  at::Tensor rstd = empty_output(x.sizes().slice(0, x.dim() - 1), x.options().dtype(at::kFloat));
  QkNormRopeFwdParams p;
  fill(p, pr, xr, num_heads, eps, normalize);
  p.y = y.data_ptr();
  p.rstd = rstd.data_ptr<float>();
  if (p.rows > 0) be.fwd(p, x.scalar_type());
  return {y, rstd};
}

std::tuple<at::Tensor, at::Tensor> qk_norm_rope_backward(
    const Backend& be, const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const at::Tensor& positions, const at::Tensor& rstd, int64_t num_heads, at::IntArrayRef sections,
    at::ArrayRef<double> bases, bool interleaved, bool normalize, bool weight_requires_grad) {
  const Prepared pr = prepare(kBwd, be, x, weight, positions, num_heads, sections, bases, interleaved);
  check_same_device(kBwd, "grad_y", grad_y, x, "x");
  TORCH_CHECK_TYPE(grad_y.scalar_type() == x.scalar_type(), kBwd, ": argument 'grad_y' must have the dtype of 'x' (",
                   dtype_name(x.scalar_type()), "), got ", dtype_name(grad_y.scalar_type()));
  check_shape(kBwd, "grad_y", grad_y, x.sizes(), "x.shape");
  check_same_device(kBwd, "rstd", rstd, x, "x");
  check_dtype(kBwd, "rstd", rstd, {at::kFloat});
  check_shape(kBwd, "rstd", rstd, x.sizes().slice(0, x.dim() - 1), "x.shape[:-1]");
  TORCH_CHECK_VALUE(!weight_requires_grad || weight.has_value(), kBwd,
                    ": weight_requires_grad=True needs a 'weight'");
  const Rows xr = as_rows(x), gr = as_rows(grad_y);
  const at::Tensor rstd_c = rstd.contiguous();
  at::Tensor grad_x = empty_output(x.sizes(), x.options());
  at::Tensor gw32;
  QkNormRopeBwdParams p;
  fill(p, pr, xr, num_heads, 0.0, normalize);
  p.grad_y = gr.t.const_data_ptr();
  p.grad_y_row_stride = gr.stride;
  p.saved_rstd = rstd_c.const_data_ptr<float>();
  p.grad_x = grad_x.data_ptr();
  if (weight_requires_grad) {
    gw32 = empty_output({x.size(-1)}, x.options().dtype(at::kFloat));
    p.grad_weight = gw32.data_ptr<float>();
  }
  if (p.rows > 0) {
    be.bwd(p, x.scalar_type());
  } else if (gw32.defined()) {
    gw32.zero_();
  }
  at::Tensor gw = weight_requires_grad ? gw32.to(weight->scalar_type()) : at::empty({0}, x.options());
  return {grad_x, gw};
}

}  // namespace lavin_fast::rope
