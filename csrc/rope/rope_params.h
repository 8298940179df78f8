// Plain parameter structs of the fused QK RMSNorm + 3-D RoPE op, shared by the CPU kernels, the CUDA
// launcher and the portable device code: no torch headers here.
//
// Per row r (a token) of x (rows, W), W = num_heads * head_dim:
//   n = x * rstd * weight            (rstd = 1/sqrt(mean(x^2) + eps) over all W, or 1 without normalize)
//   y[h, j1] = n[h, j1] * cos - n[h, j2] * sin,   y[h, j2] = n[h, j2] * cos + n[h, j1] * sin
// for every rotation pair k = (j1, j2) of a head, angle = pos[r, axis(k)] * inv_freq(k). The pairs
// (RopeTables) are the same for every head, so a row's cos/sin are computed once and reused H times.
#pragma once

#include <cstdint>

namespace lavin_fast {

// Head dims up to this are supported (the tables travel by value inside the kernel parameters).
constexpr int kRopeMaxHeadDim = 256;
constexpr int kRopeMaxPairs = kRopeMaxHeadDim / 2;

// How the columns of a head pair up, from sections (s0, s1, s2) (each even, summing to head_dim):
// pair k belongs to axis a with pair_begin[a] <= k < pair_begin[a + 1]; i = k - pair_begin[a],
// half = s_a / 2, off = s0 + ... + s_{a-1}:
//   rotate-half: (j1, j2) = (off + i, off + half + i)     interleaved: (off + 2i, off + 2i + 1)
// inv_freq(k) = base_a^(-2i / s_a) in double: the angle is computed and reduced in double
// (rope_angle.h), so every int32 position gives a true rotation.
struct RopeTables {
  int head_dim = 0;
  int num_pairs = 0;        // head_dim / 2
  int pair_begin[4] = {};   // per axis, pair_begin[3] = num_pairs
  int col_begin[4] = {};    // per axis, first column of the section, col_begin[3] = head_dim
  bool interleaved = false;
  double inv_freq[kRopeMaxPairs] = {};
};

struct QkNormRopeFwdParams {
  int64_t rows = 0;       // T (packed) or B * L (padded)
  int64_t width = 0;      // W = num_heads * head_dim
  int64_t num_heads = 0;  // H
  float eps = 0.f;
  bool normalize = true;  // false: rstd = 1 (RoPE of x * weight only)
  RopeTables rope;

  const void* x = nullptr;  // (rows, W), dtype T_io, last dim contiguous
  int64_t x_row_stride = 0;
  const float* weight = nullptr;  // (W,) fp32, or null for ones
  const int32_t* positions = nullptr;  // (rows, 3) contiguous int32 (t, h, w), any int32 value

  void* y = nullptr;      // (rows, W) contiguous, dtype T_io
  float* rstd = nullptr;  // (rows,)
};

// Backward, with gn = R^T grad_y (rotation by -angle):
//   grad_x = rstd * gn*weight - (rstd^3 * sum(gn*weight*x) / W) * x   (normalize)
//          = gn * weight                                               (no normalize)
//   grad_weight = sum_rows gn * x * rstd
struct QkNormRopeBwdParams : QkNormRopeFwdParams {
  const void* grad_y = nullptr;  // (rows, W), dtype T_io
  int64_t grad_y_row_stride = 0;
  const float* saved_rstd = nullptr;  // (rows,) from the forward
  void* grad_x = nullptr;             // (rows, W) contiguous, dtype T_io
  float* grad_weight = nullptr;       // (W,) fp32 or null (not needed)
};

}  // namespace lavin_fast
