// Batched fp32 transposes, parallel over square tiles of every matrix (a tile's rows and columns stay
// in L1 while both sides are streamed). Compiled once per instruction set with CPU_CAPABILITY =
// DEFAULT / AVX2 / AVX512.
#include <ATen/Parallel.h>

#include <algorithm>

#include "common/cpu_isa.h"
#include "common/transpose_cpu.h"

#ifndef CPU_CAPABILITY
#error "transpose_cpu_kernel.cpp is compiled with -DCPU_CAPABILITY=<DEFAULT|AVX2|AVX512>"
#endif

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {
namespace {

constexpr int64_t kTile = 64;

void batched(const TransposeParams& p) {
  const int64_t tr = (p.rows + kTile - 1) / kTile, tc = (p.cols + kTile - 1) / kTile;
  const int64_t tiles = p.batch * tr * tc;
  // Grain: about 64 KiB of source per task.
  at::parallel_for(0, tiles, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / (tr * tc), r0 = (i / tc) % tr * kTile, c0 = i % tc * kTile;
      const int64_t nr = std::min(kTile, p.rows - r0), nc = std::min(kTile, p.cols - c0);
      transpose(p.src + b * p.src_batch + r0 * p.lds + c0, p.lds, nr, nc, p.dst + b * p.dst_batch + c0 * p.ldd + r0,
                p.ldd);
    }
  });
}

}  // namespace
}  // namespace CPU_CAPABILITY

LAVIN_FAST_DEFINE_ISA_TABLE(TransposeCpuKernels, kTransposeCpuKernels, &CPU_CAPABILITY::batched);

}  // namespace lavin_fast::cpu
