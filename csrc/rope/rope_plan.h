// How the portable qk_norm_rope kernels (rope_kernel.cuh) are laid out over threads and blocks: plain
// host C++, shared by the CUDA launcher and the SIMT emulator's (rope_launch.h), so both run the
// kernels with the same geometry. Every choice depends only on shapes, dtypes and pointer alignment
// (never on the GPU), so grad_weight is summed in the same order everywhere.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "rope/rope_params.h"

namespace lavin_fast::rope_kernels {

// A row is handled by a group of G threads (a multiple of 32); thread t owns the row's vectors
// t, t + G, ... (V elements each: 16 bytes when shapes and pointers allow, else 1). The row is staged
// in shared memory as fp32, because a rotation pairs columns that other threads own. The backward keeps
// up to kVecs owned vectors of x, grad and the grad_weight partial sums in registers.
template <int V>
constexpr int owned_vecs() { return V > 1 ? 4 : 16; }

constexpr int kWarp = 32;
constexpr int kMaxGroup = 256;  // the kernels' __launch_bounds__
// Groups narrower than this share a block (R = 128 / G rows at a time).
constexpr int kMinBlockThreads = 128;
// The widest row: kMaxGroup * owned_vecs * V elements is 4096 for fp32 and for scalars, 8192 for bf16.
// One limit for every dtype keeps the message simple. Shared memory stays under 40 KiB (forward:
// head_dim + R * (W + head_dim + G / 32) floats; the backward adds R * W when R > 1).
constexpr int64_t kMaxWidth = 4096;

// grad_weight: rows are cut into chunks of C rows, one block each, writing one partial row per chunk;
// the finalize kernel adds the chunks' rows in chunk order. ~512 chunks keep an H100 busy while the
// partials stay a small part of the traffic (first guesses: not measured on a GPU yet).
constexpr int64_t kTargetChunks = 512;
constexpr int64_t kMinChunkRows = 16;
constexpr int64_t kMaxGridX = int64_t{1} << 30;
constexpr int kFinThreads = 256;

struct RopePlan {
  int group = kWarp;       // G
  int rows_per_block = 1;  // R
  int64_t grid = 1;
  size_t smem_bytes = 0;
  int64_t chunk_rows = 0;  // backward: C
  int threads() const { return group * rows_per_block; }
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Shared memory per row: the fp32 row, cos/sin of the head's pairs, one float per warp (reductions).
inline size_t smem_floats_per_row(const QkNormRopeFwdParams& p, int group) {
  return static_cast<size_t>(p.width) + static_cast<size_t>(p.rope.head_dim) + group / kWarp;
}

template <int V>
RopePlan plan_rows(const QkNormRopeFwdParams& p) {
  RopePlan l;
  const int64_t need = ceil_div(ceil_div(p.width / V, owned_vecs<V>()), kWarp) * kWarp;
  l.group = static_cast<int>(std::clamp<int64_t>(need, kWarp, kMaxGroup));
  l.rows_per_block = std::max(1, kMinBlockThreads / l.group);
  // The column infos (one int per head column), then the rows.
  l.smem_bytes = (static_cast<size_t>(p.rope.head_dim) + l.rows_per_block * smem_floats_per_row(p, l.group)) *
                 sizeof(float);
  return l;
}

template <int V>
RopePlan plan_fwd(const QkNormRopeFwdParams& p) {
  RopePlan l = plan_rows<V>(p);
  l.grid = std::min(ceil_div(p.rows, l.rows_per_block), kMaxGridX);
  return l;
}

template <int V>
RopePlan plan_bwd(const QkNormRopeBwdParams& p) {
  RopePlan l = plan_rows<V>(p);
  const int64_t r = l.rows_per_block;
  int64_t c = p.grad_weight ? std::max(kMinChunkRows, ceil_div(p.rows, kTargetChunks)) : r;
  c = std::max(c, ceil_div(p.rows, kMaxGridX));
  l.chunk_rows = ceil_div(c, r) * r;
  l.grid = ceil_div(p.rows, l.chunk_rows);
  // Groups of one block add their grad_weight sums through shared memory: R * W more floats.
  if (p.grad_weight && r > 1) l.smem_bytes += static_cast<size_t>(r * p.width) * sizeof(float);
  return l;
}

// Partial grad_weight rows, one per chunk (none when one chunk covers all rows).
inline size_t bwd_workspace_floats(const QkNormRopeBwdParams& p, const RopePlan& l) {
  if (!p.grad_weight || l.grid <= 1) return 0;
  return static_cast<size_t>(l.grid) * static_cast<size_t>(p.width);
}

inline bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }
inline bool rows_aligned(const void* ptr, int64_t stride, int v) {
  return ptr == nullptr || (aligned16(ptr) && stride % v == 0);
}

inline bool fwd_vectorizable(const QkNormRopeFwdParams& p, int v) {
  return v > 1 && p.width % v == 0 && rows_aligned(p.x, p.x_row_stride, v) && rows_aligned(p.y, p.width, v);
}
inline bool bwd_vectorizable(const QkNormRopeBwdParams& p, int v) {
  return fwd_vectorizable(p, v) && rows_aligned(p.grad_y, p.grad_y_row_stride, v) &&
         rows_aligned(p.grad_x, p.width, v);
}

}  // namespace lavin_fast::rope_kernels
