// The RMSNorm family's CUDA kernels under ThreadSanitizer fibers (CMake -DLAVIN_FAST_TSAN=ON, CTest
// rms_norm_tsan): forward and backward on the shapes that exercise every synchronisation of
// rms_norm_kernel.cuh (warp-only and block reductions, groups sharing a block, uncached rows, split
// per-segment reductions and their finalize). TSan must report nothing; the values are pytest's job.
// Torch-free: the simt launcher and the emulator only.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "norms/rms_norm_simt_launch.h"

namespace {

using lavin_fast::ElemType;

struct Case {
  int64_t rows, dim;
  ElemType type;
  std::vector<int32_t> cu_seqlens;  // empty: one segment
};

// Elements of `type` near 1 + small variations, as raw bits (fp32, or bf16 / fp16 halves).
std::vector<unsigned char> values(int64_t n, ElemType type) {
  const size_t size = type == ElemType::kFloat32 ? 4 : 2;
  std::vector<unsigned char> out(static_cast<size_t>(n) * size);
  for (int64_t i = 0; i < n; ++i) {
    if (type == ElemType::kFloat32) {
      const float v = 0.5f + static_cast<float>(i % 7) * 0.25f;
      __builtin_memcpy(&out[i * 4], &v, 4);
    } else {
      const uint16_t one = type == ElemType::kBFloat16 ? 0x3f80 : 0x3c00;
      const uint16_t v = static_cast<uint16_t>(one + i % 5);
      __builtin_memcpy(&out[i * 2], &v, 2);
    }
  }
  return out;
}

void run(const Case& c) {
  const int64_t segs = c.cu_seqlens.empty() ? 1 : static_cast<int64_t>(c.cu_seqlens.size()) - 1;
  const int64_t n = c.rows * c.dim;
  std::vector<unsigned char> x = values(n, c.type), grad_y = values(n, c.type), y = x, grad_x = x;
  std::vector<float> rstd(c.rows), mult(segs * c.dim, 1.25f), shift(segs * c.dim, 0.5f);
  std::vector<float> grad_mult(segs * c.dim), grad_shift(segs * c.dim);

  lavin_fast::RmsNormBwdParams p;
  p.rows = c.rows;
  p.dim = c.dim;
  p.eps = 1e-6f;
  if (c.cu_seqlens.empty()) {
    p.seg.rows_per_segment = c.rows;
  } else {
    p.seg.cu_seqlens = c.cu_seqlens.data();
    p.seg.num_segments = segs;
  }
  p.x = x.data();
  p.x_row_stride = c.dim;
  p.mult = mult.data();
  p.mult_seg_stride = c.dim;
  p.shift = shift.data();
  p.y = y.data();
  p.rstd = rstd.data();
  p.grad_y = grad_y.data();
  p.grad_y_row_stride = c.dim;
  p.saved_rstd = rstd.data();
  p.grad_x = grad_x.data();
  p.grad_mult = grad_mult.data();
  p.grad_shift = grad_shift.data();
  for (auto s : {lf::emu::Schedule::kForward, lf::emu::Schedule::kReverse, lf::emu::Schedule::kRandom}) {
    if (!lavin_fast::simt::rms_norm_fwd(p, c.type, s, 7) || !lavin_fast::simt::rms_norm_bwd(p, c.type, s, 7)) {
      std::fprintf(stderr, "the launcher rejected D = %lld\n", static_cast<long long>(c.dim));
      std::exit(1);
    }
  }
}

}  // namespace

int main() {
  const std::vector<Case> cases = {
      {13, 72, ElemType::kBFloat16, {}},                   // vectorised, groups of 16 sharing a block
      {13, 7, ElemType::kFloat32, {0, 3, 3, 4, 13}},         // scalar, empty segments
      {40, 2305, ElemType::kFloat32, {0, 1, 35, 40}},        // 320-thread block reductions, split segments
      {3, 16392, ElemType::kBFloat16, {}},                 // uncached rows
  };
  for (const Case& c : cases) run(c);
  std::printf("%zu cases, forward and backward, 3 schedules each\n", cases.size());
  return 0;
}
