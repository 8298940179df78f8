// Batched fp32 matrix transposes on the CPU, parallel over tiles: the NCDHW <-> channels-last frame
// conversions of causal_conv3d (ATen's strided copy runs them at about 2 GB/s, the vector blocks at
// memory speed). transpose_cpu_kernel.cpp is compiled once per instruction set.
#pragma once

#include <cstdint>

namespace lavin_fast::cpu {

// For b in [0, batch): dst + b * dst_batch (cols x rows, row stride ldd) =
// transpose of src + b * src_batch (rows x cols, row stride lds).
struct TransposeParams {
  const float* src;
  float* dst;
  int64_t batch, rows, cols;
  int64_t lds, ldd, src_batch, dst_batch;
};

void transpose_batched(const TransposeParams& p);

// One table per instruction-set variant of transpose_cpu_kernel.cpp.
struct TransposeCpuKernels {
  void (*batched)(const TransposeParams&);
};

}  // namespace lavin_fast::cpu
