// Plain parameter structs of the RMSNorm family, shared by the CPU kernels, the CUDA launchers and the
// portable device code: no torch headers here.
//
// All three ops compute, per row r of segment s = seg(r),
//     y[r] = x[r] * rstd[r] * mult[s] + (shift[s] | residual[r] | 0),  rstd[r] = 1/sqrt(mean(x[r]^2) + eps)
// with mult = weight (rms_norm), 1 + scale (rms_norm_modulate) or act(gate) (gated_rms_residual),
// prepared in fp32 by the host. Strides are in elements.
#pragma once

#include <cstdint>

#include "common/segments.h"

namespace lavin_fast {

struct RmsNormFwdParams {
  int64_t rows = 0;  // T (packed) or B * L (padded)
  int64_t dim = 0;   // D
  float eps = 0.f;
  SegmentLayout seg;  // rms_norm: one segment

  const void* x = nullptr;  // (rows, D), dtype T_io
  int64_t x_row_stride = 0;
  const float* mult = nullptr;  // (S, D) fp32, or null for 1
  int64_t mult_seg_stride = 0;  // 0 broadcasts one row (rms_norm's weight)
  const float* shift = nullptr;  // (S, D) fp32, or null
  const void* residual = nullptr;  // (rows, D), dtype T_io, or null; never together with shift
  int64_t residual_row_stride = 0;

  void* y = nullptr;      // (rows, D) contiguous, dtype T_io
  float* rstd = nullptr;  // (rows,)
};

// Backward of the same expression, n = x * rstd:
//   grad_x = rstd * (g*mult - n * mean(g*mult*n)),  grad_mult[s] = sum_{r in s} g*n,
//   grad_shift[s] = sum_{r in s} g. The residual's gradient is g itself.
struct RmsNormBwdParams : RmsNormFwdParams {
  const void* grad_y = nullptr;  // (rows, D), dtype T_io
  int64_t grad_y_row_stride = 0;
  const float* saved_rstd = nullptr;  // (rows,) from the forward
  void* grad_x = nullptr;             // (rows, D) contiguous, dtype T_io
  float* grad_mult = nullptr;   // (S, D) fp32 or null (not needed)
  float* grad_shift = nullptr;  // (S, D) fp32 or null
};

}  // namespace lavin_fast
