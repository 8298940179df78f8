// Schemas of the causal 3-D convolution (csrc/conv). Kernels register per dispatch key in
// causal_conv3d_cpu_register.cpp and causal_conv3d_cuda.cpp.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(lavin_fast, m) {
  // x (N, C, T, H, W), weight (O, C, k_t, k_h, k_w), bias (O,), cache (N, C, k_t - 1, H, W)
  //   -> y (N, O, T_out, H_out, W_out), new_cache (N, C, k_t - 1, H, W) (empty (0,) unless return_cache)
  m.def(
      "causal_conv3d(Tensor x, Tensor weight, Tensor? bias, int[3] stride, int[2] padding, "
      "str temporal_pad, Tensor? cache, bool return_cache) -> (Tensor, Tensor)");
  // grad_new_cache: the gradient of the forward's new_cache output, or None.
  //   -> grad_x, grad_weight, grad_bias (empty (0,) unless has_bias), grad_cache (empty (0,) without cache)
  m.def(
      "causal_conv3d_backward(Tensor grad_y, Tensor? grad_new_cache, Tensor x, Tensor weight, "
      "bool has_bias, int[3] stride, int[2] padding, str temporal_pad, Tensor? cache) "
      "-> (Tensor, Tensor, Tensor, Tensor)");
}
