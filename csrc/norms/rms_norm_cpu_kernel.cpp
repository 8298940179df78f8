// CPU kernels of the RMSNorm family: one pass over the rows (each row is read from memory once and
// re-read from L1/L2, written once), fp32 accumulation, ATen Vectorized, parallel over rows.
// Compiled once per instruction set with CPU_CAPABILITY = DEFAULT / AVX2 / AVX512.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cmath>
#include <vector>

#include "common/cpu_isa.h"
#include "common/cpu_vec.h"
#include "common/segments.h"
#include "norms/rms_norm_cpu.h"

#ifndef CPU_CAPABILITY
#error "rms_norm_cpu_kernel.cpp is compiled with -DCPU_CAPABILITY=<DEFAULT|AVX2|AVX512>"
#endif

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {
namespace {

// Rows per parallel task: about 64 KiB of input per task amortises the scheduling.
int64_t row_grain(int64_t dim) { return std::max<int64_t>(1, (int64_t{1} << 14) / std::max<int64_t>(dim, 1)); }

template <typename T>
float sum_of_squares(const T* x, int64_t d) {
  fVec acc0(0.f), acc1(0.f);
  for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
    fVec a, b;
    Chunk<T>::load(x + j, n, tag, a, b);
    acc0 = at::vec::fmadd(a, a, acc0);
    acc1 = at::vec::fmadd(b, b, acc1);
  });
  return at::vec::vec_reduce_all([](fVec u, fVec v) { return u + v; }, acc0 + acc1);
}

enum class Add { kNone, kShift, kResidual };

// Whether row r of a (rows, d) contiguous output of T may be written with streaming stores.
template <typename T>
bool stream_row(const void* base, int64_t rows, int64_t d, int64_t r) {
  if (rows * d * static_cast<int64_t>(sizeof(T)) < kStreamMinBytes) return false;
  return (reinterpret_cast<uintptr_t>(static_cast<const T*>(base) + r * d) % kStreamAlign) == 0;
}

template <typename T>
inline void store_out(T* p, int64_t n, FullChunk tag, bool stream, const fVec& a, const fVec& b) {
  if (stream) {
    Chunk<T>::stream(p, a, b);
  } else {
    Chunk<T>::store(p, n, tag, a, b);
  }
}
template <typename T>
inline void store_out(T* p, int64_t n, TailChunk tag, bool, const fVec& a, const fVec& b) {
  Chunk<T>::store(p, n, tag, a, b);
}

template <typename T, bool kMult, Add kAdd>
void fwd_range(const RmsNormFwdParams& p, int64_t begin, int64_t end) {
  const int64_t d = p.dim;
  const float inv_d = 1.f / static_cast<float>(d);
  SegmentCursor seg(p.seg, begin);
  for (int64_t r = begin; r < end; ++r) {
    const int64_t s = seg.segment_of(r);
    const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
    T* y = static_cast<T*>(p.y) + r * d;
    const float rstd = 1.f / std::sqrt(sum_of_squares(x, d) * inv_d + p.eps);
    p.rstd[r] = rstd;
    const float* m = kMult ? p.mult + s * p.mult_seg_stride : nullptr;
    const float* sh = kAdd == Add::kShift ? p.shift + s * d : nullptr;
    const T* res = kAdd == Add::kResidual ? static_cast<const T*>(p.residual) + r * p.residual_row_stride
                                          : nullptr;
    const fVec vr(rstd);
    const bool stream = stream_row<T>(p.y, p.rows, d, r);
    for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
      fVec a, b;
      Chunk<T>::load(x + j, n, tag, a, b);
      a = a * vr;
      b = b * vr;
      if constexpr (kMult) {
        fVec ma, mb;
        Chunk<float>::load(m + j, n, tag, ma, mb);
        a = a * ma;
        b = b * mb;
      }
      if constexpr (kAdd == Add::kShift) {
        fVec sa, sb;
        Chunk<float>::load(sh + j, n, tag, sa, sb);
        a = a + sa;
        b = b + sb;
      } else if constexpr (kAdd == Add::kResidual) {
        fVec ra, rb;
        Chunk<T>::load(res + j, n, tag, ra, rb);
        a = a + ra;
        b = b + rb;
      }
      store_out(y + j, n, tag, stream, a, b);
    });
  }
  stream_fence();
}

template <typename T, bool kMult, Add kAdd>
void fwd_typed(const RmsNormFwdParams& p) {
  at::parallel_for(0, p.rows, row_grain(p.dim), [&](int64_t begin, int64_t end) {
    fwd_range<T, kMult, kAdd>(p, begin, end);
  });
}

template <typename T>
void fwd_dtype(const RmsNormFwdParams& p) {
  const bool mult = p.mult != nullptr;
  if (p.shift) {
    mult ? fwd_typed<T, true, Add::kShift>(p) : fwd_typed<T, false, Add::kShift>(p);
  } else if (p.residual) {
    mult ? fwd_typed<T, true, Add::kResidual>(p) : fwd_typed<T, false, Add::kResidual>(p);
  } else {
    mult ? fwd_typed<T, true, Add::kNone>(p) : fwd_typed<T, false, Add::kNone>(p);
  }
}

// Backward of one row. Accumulates g*n into acc_mult and g into acc_shift when they are requested.
template <typename T, bool kMult, bool kGradMult, bool kGradShift>
void bwd_row(const RmsNormBwdParams& p, int64_t r, int64_t s, float* acc_mult, float* acc_shift) {
  const int64_t d = p.dim;
  const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
  const T* g = static_cast<const T*>(p.grad_y) + r * p.grad_y_row_stride;
  T* dx = static_cast<T*>(p.grad_x) + r * d;
  const float* m = kMult ? p.mult + s * p.mult_seg_stride : nullptr;
  const float rstd = p.saved_rstd[r];

  // dot = sum(g * mult * x)
  fVec dot0(0.f), dot1(0.f);
  for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
    fVec ga, gb, xa, xb;
    Chunk<T>::load(g + j, n, tag, ga, gb);
    Chunk<T>::load(x + j, n, tag, xa, xb);
    if constexpr (kMult) {
      fVec ma, mb;
      Chunk<float>::load(m + j, n, tag, ma, mb);
      ga = ga * ma;
      gb = gb * mb;
    }
    dot0 = at::vec::fmadd(ga, xa, dot0);
    dot1 = at::vec::fmadd(gb, xb, dot1);
  });
  const float dot = at::vec::vec_reduce_all([](fVec u, fVec v) { return u + v; }, dot0 + dot1);
  // grad_x = rstd * g*mult - (rstd^3 * dot / D) * x
  const fVec vr(rstd);
  const fVec vc(rstd * rstd * rstd * dot / static_cast<float>(d));
  const bool stream = stream_row<T>(p.grad_x, p.rows, d, r);
  for_each_chunk(d, [&](int64_t j, int64_t n, auto tag) {
    fVec ga, gb, xa, xb;
    Chunk<T>::load(g + j, n, tag, ga, gb);
    Chunk<T>::load(x + j, n, tag, xa, xb);
    if constexpr (kGradMult) {
      fVec aa, ab;
      Chunk<float>::load(acc_mult + j, n, tag, aa, ab);
      aa = at::vec::fmadd(ga * xa, vr, aa);
      ab = at::vec::fmadd(gb * xb, vr, ab);
      Chunk<float>::store(acc_mult + j, n, tag, aa, ab);
    }
    if constexpr (kGradShift) {
      fVec aa, ab;
      Chunk<float>::load(acc_shift + j, n, tag, aa, ab);
      Chunk<float>::store(acc_shift + j, n, tag, aa + ga, ab + gb);
    }
    if constexpr (kMult) {
      fVec ma, mb;
      Chunk<float>::load(m + j, n, tag, ma, mb);
      ga = ga * ma;
      gb = gb * mb;
    }
    store_out(dx + j, n, tag, stream, ga * vr - xa * vc, gb * vr - xb * vc);
  });
}

// A run of rows inside one segment. Reductions over a segment are split into such blocks so they can
// run in parallel; the split depends only on the shapes (never on the thread count), so gradients are
// bitwise reproducible from run to run and machine to machine.
struct RowBlock {
  int64_t segment, begin, end;
  float* acc_mult;   // (D,) where this block accumulates g*n: the output row of its segment when the
  float* acc_shift;  // block is the segment's only one, else a row of the partial-sum buffer
};

constexpr int64_t kReductionBlocks = 64;

template <typename T, bool kMult, bool kGradMult, bool kGradShift>
void bwd_typed(const RmsNormBwdParams& p) {
  const int64_t d = p.dim;
  const int64_t num_seg = p.seg.num_segments;
  if constexpr (!kGradMult && !kGradShift) {
    at::parallel_for(0, p.rows, row_grain(d), [&](int64_t begin, int64_t end) {
      SegmentCursor seg(p.seg, begin);
      for (int64_t r = begin; r < end; ++r)
        bwd_row<T, kMult, false, false>(p, r, seg.segment_of(r), nullptr, nullptr);
      stream_fence();
    });
    return;
  }
  const int64_t block_rows = std::max<int64_t>(1, (p.rows + kReductionBlocks - 1) / kReductionBlocks);
  std::vector<RowBlock> blocks;
  std::vector<int64_t> first_block(num_seg + 1, 0);
  int64_t split_blocks = 0;
  for (int64_t s = 0; s < num_seg; ++s) {
    const int64_t b0 = segment_begin(p.seg, s), b1 = segment_begin(p.seg, s + 1);
    first_block[s] = static_cast<int64_t>(blocks.size());
    for (int64_t b = b0; b < b1; b += block_rows) blocks.push_back({s, b, std::min(b1, b + block_rows)});
    if (b1 - b0 > block_rows) split_blocks += static_cast<int64_t>(blocks.size()) - first_block[s];
  }
  first_block[num_seg] = static_cast<int64_t>(blocks.size());
  std::vector<float> partial_mult(kGradMult ? split_blocks * d : 0);
  std::vector<float> partial_shift(kGradShift ? split_blocks * d : 0);
  int64_t next_partial = 0;
  for (int64_t s = 0; s < num_seg; ++s) {
    const bool single = first_block[s + 1] - first_block[s] == 1;
    for (int64_t i = first_block[s]; i < first_block[s + 1]; ++i, next_partial += !single) {
      if (kGradMult)
        blocks[i].acc_mult = single ? p.grad_mult + s * d : partial_mult.data() + next_partial * d;
      if (kGradShift)
        blocks[i].acc_shift = single ? p.grad_shift + s * d : partial_shift.data() + next_partial * d;
    }
  }

  at::parallel_for(0, static_cast<int64_t>(blocks.size()), 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const RowBlock& blk = blocks[i];
      if (kGradMult) std::fill(blk.acc_mult, blk.acc_mult + d, 0.f);
      if (kGradShift) std::fill(blk.acc_shift, blk.acc_shift + d, 0.f);
      for (int64_t r = blk.begin; r < blk.end; ++r)
        bwd_row<T, kMult, kGradMult, kGradShift>(p, r, blk.segment, blk.acc_mult, blk.acc_shift);
    }
    stream_fence();
  });

  // Segments split into several blocks: sum the partials in block order (deterministic). Segments
  // without rows: zeros.
  const auto reduce = [&](float* out, float* RowBlock::*acc, int64_t s) {
    std::fill(out, out + d, 0.f);
    for (int64_t i = first_block[s]; i < first_block[s + 1]; ++i)
      at::vec::map2<float>([](fVec u, fVec v) { return u + v; }, out, out, blocks[i].*acc, d);
  };
  at::parallel_for(0, num_seg, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      if (first_block[s + 1] - first_block[s] == 1) continue;
      if (kGradMult) reduce(p.grad_mult + s * d, &RowBlock::acc_mult, s);
      if (kGradShift) reduce(p.grad_shift + s * d, &RowBlock::acc_shift, s);
    }
  });
}

template <typename T>
void bwd_dtype(const RmsNormBwdParams& p) {
  const bool gm = p.grad_mult != nullptr, gs = p.grad_shift != nullptr;
  if (p.mult) {
    if (gm && gs) return bwd_typed<T, true, true, true>(p);
    if (gm) return bwd_typed<T, true, true, false>(p);
    if (gs) return bwd_typed<T, true, false, true>(p);
    return bwd_typed<T, true, false, false>(p);
  }
  TORCH_INTERNAL_ASSERT(!gm, "grad_mult requested without mult");
  if (gs) return bwd_typed<T, false, false, true>(p);
  return bwd_typed<T, false, false, false>(p);
}

void fwd(const RmsNormFwdParams& p, c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return fwd_dtype<float>(p);
    case c10::kBFloat16: return fwd_dtype<c10::BFloat16>(p);
    case c10::kHalf: return fwd_dtype<c10::Half>(p);
    default: TORCH_INTERNAL_ASSERT(false, "rms_norm_fwd: unsupported dtype ", dtype);
  }
}

void bwd(const RmsNormBwdParams& p, c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat: return bwd_dtype<float>(p);
    case c10::kBFloat16: return bwd_dtype<c10::BFloat16>(p);
    case c10::kHalf: return bwd_dtype<c10::Half>(p);
    default: TORCH_INTERNAL_ASSERT(false, "rms_norm_bwd: unsupported dtype ", dtype);
  }
}

}  // namespace
}  // namespace CPU_CAPABILITY

LAVIN_FAST_DEFINE_ISA_TABLE(RmsNormCpuKernels, kRmsNormCpuKernels, &CPU_CAPABILITY::fwd, &CPU_CAPABILITY::bwd);

}  // namespace lavin_fast::cpu
