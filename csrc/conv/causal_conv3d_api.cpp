#include "conv/causal_conv3d_api.h"

#include <ATen/ATen.h>

#include "common/alloc.h"
#include "common/check.h"
#include "conv/causal_conv3d_aten.h"
#include "conv/causal_conv3d_geometry.h"

namespace lavin_fast::conv {
namespace {

constexpr const char* kOp = "lavin_fast.causal_conv3d";
// Kernel sizes per dimension the op takes. Larger temporal kernels would make the per-frame pieces
// of the ATen path and the CUDA kernel's tap decode grow without a model that needs them.
constexpr int64_t kMaxKernel = 7;

TemporalPad parse_pad(std::string_view s, bool has_cache) {
  TORCH_CHECK_VALUE(s == "replicate" || s == "zeros", kOp,
                    ": argument 'temporal_pad' must be \"replicate\" or \"zeros\", got \"", std::string(s), "\"");
  if (has_cache) return TemporalPad::kCache;
  return s == "replicate" ? TemporalPad::kReplicate : TemporalPad::kZeros;
}

void check_same_dtype(const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK_TYPE(t.scalar_type() == x.scalar_type(), kOp, ": argument '", name, "' must have the dtype of 'x' (",
                   dtype_name(x.scalar_type()), "), got ", dtype_name(t.scalar_type()));
}

// Every check of the forward and the backward: shapes, dtypes, devices, sizes.
Geometry check_and_plan(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                        at::IntArrayRef stride, at::IntArrayRef padding, std::string_view temporal_pad,
                        const std::optional<at::Tensor>& cache) {
  check_dim(kOp, "x", x, 5, "(N, C, T, H, W)");
  check_dtype(kOp, "x", x, {at::kFloat, at::kBFloat16, at::kHalf, at::kDouble});
  check_dim(kOp, "weight", weight, 5, "(O, C, k_t, k_h, k_w)");
  check_same_dtype("weight", weight, x);
  check_same_device(kOp, "weight", weight, x, "x");
  TORCH_CHECK_VALUE(stride.size() == 3 && padding.size() == 2, kOp,
                    ": stride must have 3 values (s_t, s_h, s_w) and padding 2 (p_h, p_w)");
  const int64_t n = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  const int64_t o = weight.size(0), kt = weight.size(2), kh = weight.size(3), kw = weight.size(4);
  TORCH_CHECK_VALUE(weight.size(1) == c, kOp, ": argument 'weight' must have shape (O, C, k_t, k_h, k_w) with C = ",
                    c, " (x.shape[1]), got ", shape_str(weight.sizes()));
  TORCH_CHECK_VALUE(o >= 1 && c >= 1, kOp, ": channels must be >= 1, got C = ", c, ", O = ", o);
  for (int64_t k : {kt, kh, kw}) {
    TORCH_CHECK_VALUE(k >= 1 && k <= kMaxKernel, kOp, ": kernel sizes must be in [1, ", kMaxKernel,
                      "], got weight shape ", shape_str(weight.sizes()));
  }
  for (int64_t s : stride) {
    TORCH_CHECK_VALUE(s >= 1, kOp, ": argument 'stride' must be >= 1, got ", shape_str(stride));
  }
  for (int64_t p : padding) {
    TORCH_CHECK_VALUE(p >= 0, kOp, ": argument 'spatial_padding' must be >= 0, got ", shape_str(padding));
  }
  TORCH_CHECK_VALUE(t >= 1, kOp, ": argument 'x' must have at least one frame (T >= 1), got shape ",
                    shape_str(x.sizes()));
  TORCH_CHECK_VALUE(h + 2 * padding[0] >= kh && w + 2 * padding[1] >= kw, kOp,
                    ": the padded frame (H + 2 p_h, W + 2 p_w) = (", h + 2 * padding[0], ", ", w + 2 * padding[1],
                    ") is smaller than the kernel (", kh, ", ", kw, ")");
  if (bias) {
    check_same_dtype("bias", *bias, x);
    check_same_device(kOp, "bias", *bias, x, "x");
    check_shape(kOp, "bias", *bias, {o}, "(O,)");
  }
  if (cache) {
    check_same_dtype("cache", *cache, x);
    check_same_device(kOp, "cache", *cache, x, "x");
    check_shape(kOp, "cache", *cache, {n, c, kt - 1, h, w}, "(N, C, k_t - 1, H, W)");
  }
  return make_geometry(n, c, t, h, w, o, kt, kh, kw, stride[0], stride[1], stride[2], padding[0], padding[1],
                       parse_pad(temporal_pad, cache.has_value()));
}

// The padded sequence's last k_t - 1 frames: x's, preceded by padding frames when T < k_t - 1.
at::Tensor make_new_cache(const Geometry& g, const at::Tensor& x, const std::optional<at::Tensor>& cache) {
  const int64_t lag = g.kt - 1;
  at::Tensor out = empty_output({g.n, g.c, lag, g.h, g.w}, x.options().memory_format(x.suggest_memory_format()));
  for (int64_t i = 0; i < lag; ++i) {
    const int64_t p = g.t + i;  // padded frame
    at::Tensor dst = out.narrow(2, i, 1);
    if (p >= lag) {
      dst.copy_(x.narrow(2, p - lag, 1));
    } else if (g.pad == TemporalPad::kCache) {
      dst.copy_(cache->narrow(2, p, 1));
    } else if (g.pad == TemporalPad::kReplicate) {
      dst.copy_(x.narrow(2, 0, 1));
    } else {
      dst.zero_();
    }
  }
  return out;
}

// The weight as the kernels' B matrix (O, K) with rows padded with zeros to a multiple of the CUDA
// kernel's k tile and 16-byte aligned (cp.async): no k predicates in its loads. Weight-sized.
at::Tensor kernel_weight(const at::Tensor& weight) {
  constexpr int64_t kRowAlign = 32;  // conv_kernels::kBlockK
  const int64_t o = weight.size(0), k = weight.numel() / o, k_pad = (k + kRowAlign - 1) / kRowAlign * kRowAlign;
  const at::Tensor w = weight.contiguous();
  if (k_pad == k && reinterpret_cast<uintptr_t>(w.const_data_ptr()) % 16 == 0) return w.view({o, k});
  at::Tensor padded = at::zeros({o, k_pad}, weight.options());
  padded.narrow(1, 0, k).copy_(w.view({o, k}));
  return padded;
}

CausalConv3dParams kernel_params(const Geometry& g, const at::Tensor& x, const at::Tensor& w,
                                 const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& cache,
                                 const at::Tensor& y) {
  CausalConv3dParams p{};
  p.x = x.const_data_ptr();
  p.weight = w.const_data_ptr();
  p.bias = bias ? bias->const_data_ptr() : nullptr;
  p.cache = cache ? cache->const_data_ptr() : nullptr;
  p.y = y.data_ptr();
  p.n = g.n, p.c = g.c, p.t = g.t, p.h = g.h, p.w = g.w;
  p.o = g.o, p.kt = g.kt, p.kh = g.kh, p.kw = g.kw;
  p.st = g.st, p.sh = g.sh, p.sw = g.sw, p.ph = g.ph, p.pw = g.pw;
  p.t_out = g.t_out, p.h_out = g.h_out, p.w_out = g.w_out;
  p.pad = g.pad;
  p.weight_row_stride = w.stride(0);
  p.x_n_stride = x.stride(0), p.x_c_stride = x.stride(1), p.x_t_stride = x.stride(2);
  p.x_h_stride = x.stride(3), p.x_w_stride = x.stride(4);
  if (cache) {
    p.cache_n_stride = cache->stride(0), p.cache_c_stride = cache->stride(1), p.cache_t_stride = cache->stride(2);
    p.cache_h_stride = cache->stride(3), p.cache_w_stride = cache->stride(4);
  }
  p.y_n_stride = y.stride(0), p.y_o_stride = y.stride(1), p.y_t_stride = y.stride(2);
  p.y_h_stride = y.stride(3), p.y_w_stride = y.stride(4);
  return p;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> causal_conv3d(const Backend& be, const at::Tensor& x,
                                                 const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                                 at::IntArrayRef stride, at::IntArrayRef padding,
                                                 std::string_view temporal_pad,
                                                 const std::optional<at::Tensor>& cache, bool return_cache) {
  const Geometry g = check_and_plan(x, weight, bias, stride, padding, temporal_pad, cache);
  // The kernels read the bias densely, and so does oneDNN whatever its strides (a sliced bias gave
  // wrong sums, an expanded one read past its storage): a copy of O elements at most.
  const std::optional<at::Tensor> b = bias ? std::optional<at::Tensor>(bias->contiguous()) : std::nullopt;
  at::Tensor y;
  if (x.numel() == 0) {
    // Empty frames (H or W = 0) with padding still have output windows, which see only padding
    // zeros: the bias. (at::conv3d refuses a zero-size spatial input; N = 0 gives an empty y.)
    y = at::zeros({g.n, g.o, g.t_out, g.h_out, g.w_out}, x.options().memory_format(x.suggest_memory_format()));
    if (b) y.add_(b->view({1, g.o, 1, 1, 1}));
  } else if (be.fwd && be.takes(x.scalar_type())) {
    const at::Tensor w = kernel_weight(weight);
    y = empty_output({g.n, g.o, g.t_out, g.h_out, g.w_out}, x.options().memory_format(x.suggest_memory_format()));
    if (y.numel() > 0) be.fwd(kernel_params(g, x, w, b, cache, y), x.scalar_type());
  } else {
    y = aten_forward(g, x, weight, b, cache);
  }
  at::Tensor new_cache = return_cache ? make_new_cache(g, x, cache) : at::empty({0}, x.options());
  return {y, new_cache};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> causal_conv3d_backward(
    const at::Tensor& grad_y, const std::optional<at::Tensor>& grad_new_cache, const at::Tensor& x,
    const at::Tensor& weight, bool has_bias, at::IntArrayRef stride, at::IntArrayRef padding,
    std::string_view temporal_pad, const std::optional<at::Tensor>& cache) {
  const Geometry g = check_and_plan(x, weight, std::nullopt, stride, padding, temporal_pad, cache);
  check_same_dtype("grad_y", grad_y, x);
  check_shape(kOp, "grad_y", grad_y, {g.n, g.o, g.t_out, g.h_out, g.w_out}, "(N, O, T_out, H_out, W_out)");
  if (x.numel() == 0) {  // outputs saw only padding (see causal_conv3d): only the bias has a gradient
    const at::Tensor none = at::empty({0}, x.options());
    return {at::zeros_like(x), at::zeros_like(weight),
            has_bias ? grad_y.sum({0, 2, 3, 4}, false, x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat)
                           .to(x.scalar_type())
                     : none,
            cache ? at::zeros_like(*cache) : none};
  }
  auto [grad_x, grad_w, grad_b, grad_cache] = aten_backward(g, grad_y, x, weight, has_bias, cache);
  if (grad_new_cache && grad_new_cache->numel() > 0) {
    // new_cache frame i is padded frame T + i: route its gradient to where that frame came from.
    const int64_t lag = g.kt - 1;
    check_shape(kOp, "grad_new_cache", *grad_new_cache, {g.n, g.c, lag, g.h, g.w}, "(N, C, k_t - 1, H, W)");
    for (int64_t i = 0; i < lag; ++i) {
      const int64_t p = g.t + i;
      const at::Tensor gi = grad_new_cache->narrow(2, i, 1);
      if (p >= lag) {
        grad_x.narrow(2, p - lag, 1).add_(gi);
      } else if (g.pad == TemporalPad::kCache) {
        grad_cache.narrow(2, p, 1).add_(gi);
      } else if (g.pad == TemporalPad::kReplicate) {
        grad_x.narrow(2, 0, 1).add_(gi);
      }
    }
  }
  return {grad_x, grad_w, grad_b, grad_cache};
}

}  // namespace lavin_fast::conv
