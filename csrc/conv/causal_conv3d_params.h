// The causal 3-D convolution's parameters as the torch-free layers (CUDA/simt kernels) see them:
// pointers, sizes and strides in elements, filled in one place (causal_conv3d_api.cpp).
#pragma once

#include <cstdint>

namespace lavin_fast::conv {

// Where the k_t - 1 frames before x come from.
enum class TemporalPad : int { kReplicate = 0, kZeros = 1, kCache = 2 };

struct CausalConv3dParams {
  const void* x;       // (n, c, t, h, w), any strides
  const void* weight;  // (o, k) with k = c * kt * kh * kw ordered (c, dt, dh, dw), contiguous
  const void* bias;    // (o,) or null, x's dtype
  const void* cache;   // (n, c, kt - 1, h, w) when pad == kCache, any strides
  void* y;             // (n, o, t_out, h_out, w_out), any strides

  int64_t n, c, t, h, w;
  int64_t o, kt, kh, kw;
  int64_t st, sh, sw;  // strides of the convolution
  int64_t ph, pw;      // spatial zero padding (each side)
  int64_t t_out, h_out, w_out;
  TemporalPad pad;

  int64_t x_n_stride, x_c_stride, x_t_stride, x_h_stride, x_w_stride;
  int64_t cache_n_stride, cache_c_stride, cache_t_stride, cache_h_stride, cache_w_stride;
  int64_t y_n_stride, y_o_stride, y_t_stride, y_h_stride, y_w_stride;
};

}  // namespace lavin_fast::conv
