// How the portable RMSNorm kernels (rms_norm_kernel.cuh) are laid out over threads and blocks: plain
// host C++, shared by the CUDA launcher and the SIMT emulator's (through rms_norm_launch.h), so both
// run the kernels with the same geometry. Every choice depends only on shapes, dtypes and pointer
// alignment (never on the GPU model or its SM count), so every sum, the backward's per-segment ones
// included, is taken in the same order on any GPU and from run to run.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "norms/norm_params.h"

namespace lavin_fast::rms_norm_kernels {

// A row is handled by a group of G threads. Each thread keeps its share of the row in registers between
// the reduction and the write (x is read once) as `cache_vecs` vectors of V elements, V = 16 bytes of
// the element type when the shapes and pointers allow (else V = 1), thread t owning vectors
// t, t + G, t + 2G, ... (consecutive threads touch consecutive 16 bytes: coalesced).
//   forward:  4 x 16 B per thread (16 registers of raw data; a warp holds a 1024-element bf16 row),
//             8 scalars when V = 1;
//   backward: 2 x 16 B per thread for each of x and grad_y, plus 2 x V fp32 accumulators for each of
//             grad_mult and grad_shift (48 registers for bf16), so a warp holds a 512-element bf16
//             row; twice that would not fit 128 registers.
template <int V>
constexpr int fwd_cache_vecs() { return V > 1 ? 4 : 8; }
template <int V>
constexpr int bwd_cache_vecs() { return V > 1 ? 2 : 8; }

constexpr int kWarp = 32;
// Largest group, and the kernels' __launch_bounds__. 512 threads leave ptxas up to 128 registers a
// thread: the forward uses 53-82 and the backward 81-128 (scripts/check_ptxas.py), and 1024-thread
// blocks, capped at 64, made the sm_90 forward spill. Rows wider than a full group's cache (forward:
// 32 KiB of row, bf16 D > 16384 or fp32 D > 8192; backward: 16 KiB, bf16 D > 8192 or fp32 D > 4096)
// take the uncached path and are read twice, the second time mostly from L2.
constexpr int kFwdMaxGroup = 512;
constexpr int kBwdMaxGroup = 512;
// Groups narrower than this share a block (R = 128 / G rows at a time): blocks of 4 warps keep enough
// warps resident (a block of one 32-thread group would hit the 32-blocks-per-SM limit at half
// occupancy).
constexpr int kMinBlockThreads = 128;

// Backward reductions (grad_mult, grad_shift per segment): rows are cut into fixed chunks of C rows,
// one block each; a block sums every segment's rows inside its chunk in registers and writes one
// partial row per (chunk, segment) item; segments inside one chunk get their final value directly,
// the others are summed over their chunks by the finalize kernel, in chunk order. About 512 chunks keep
// ~20 warps per SM busy on an H100 with 5-warp blocks (D = 2304 bf16) while the partials stay <10% of
// the traffic (a partial row costs as much as ~16 rows of bf16 x + grad_y + grad_x when C >= 16).
// These two numbers are first guesses: no GPU has measured them yet.
constexpr int64_t kBwdTargetChunks = 512;
constexpr int64_t kBwdMinChunkRows = 16;
// gridDim.x limit (2^31 - 1), rounded down.
constexpr int64_t kMaxGridX = int64_t{1} << 30;
constexpr int64_t kMaxGridY = 65535;

// Finalize kernel: a block handles the split segments first cut by 32 consecutive chunk boundaries
// (one warp lane checks each), for one tile of 32 columns, its 16 warps summing chunks c, c + 16, ...
constexpr int kFinWarps = 16;
constexpr int kFinThreads = kFinWarps * kWarp;
constexpr int kFinCols = kWarp;
constexpr int kFinBoundaries = kWarp;

struct RowPlan {
  int group = 1;           // G: threads per row, a power of two <= 32 or a multiple of 32
  int rows_per_block = 1;  // R: rows a block works on at once; the block has G * R threads
  bool cached = true;      // each thread's share of a row fits its register cache
  int64_t grid = 1;        // blocks (forward: grid-stride over rows; backward: one per chunk)
  size_t smem_bytes = 0;   // dynamic shared memory
  // Backward only.
  int64_t chunk_rows = 0;  // C
  int num_red = 0;         // reductions requested: grad_mult and/or grad_shift
  int threads() const { return group * rows_per_block; }
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Group geometry for rows of `nvec` vectors when each thread caches up to `cache_vecs` of them.
inline RowPlan plan_groups(int64_t nvec, int cache_vecs, int max_group) {
  RowPlan l;
  const int64_t need = ceil_div(nvec, cache_vecs);
  if (need <= kWarp) {
    // A power of two, so that xor shuffles stay inside each group of a warp.
    int g = 1;
    while (g < need) g *= 2;
    l.group = g;
  } else if (need <= max_group) {
    l.group = static_cast<int>(ceil_div(need, kWarp) * kWarp);
  } else {
    l.group = max_group;
    l.cached = false;
  }
  l.rows_per_block = l.group < kMinBlockThreads ? kMinBlockThreads / l.group : 1;
  return l;
}

// Block reductions (G > 32) go through shared memory, double-buffered so one barrier per row suffices.
inline size_t scratch_floats(const RowPlan& l) { return 2 * static_cast<size_t>(l.threads() / kWarp); }

template <int V>
RowPlan plan_fwd(const RmsNormFwdParams& p) {
  RowPlan l = plan_groups(p.dim / V, fwd_cache_vecs<V>(), kFwdMaxGroup);
  l.grid = std::min(ceil_div(p.rows, l.rows_per_block), kMaxGridX);
  l.smem_bytes = l.group > kWarp ? scratch_floats(l) * sizeof(float) : 0;
  return l;
}

template <int V>
RowPlan plan_bwd(const RmsNormBwdParams& p) {
  RowPlan l = plan_groups(p.dim / V, bwd_cache_vecs<V>(), kBwdMaxGroup);
  l.num_red = (p.grad_mult ? 1 : 0) + (p.grad_shift ? 1 : 0);
  const int64_t r = l.rows_per_block;
  // Without reductions chunks only bound the grid: one step of R rows per block.
  int64_t c = l.num_red ? std::max(kBwdMinChunkRows, ceil_div(p.rows, kBwdTargetChunks)) : r;
  c = std::max(c, ceil_div(p.rows, kMaxGridX));
  l.chunk_rows = ceil_div(c, r) * r;  // whole steps of R rows
  l.grid = ceil_div(p.rows, l.chunk_rows);
  size_t floats = scratch_floats(l);
  // Groups sharing a block sum their accumulators through shared memory at the end of each item:
  // R * D <= 128 * cache_vecs * V, at most 16 KiB with both reductions.
  if (l.cached && l.rows_per_block > 1) floats += static_cast<size_t>(r * l.num_red * p.dim);
  l.smem_bytes = floats * sizeof(float);
  return l;
}

// Partial rows of the backward's split segments: two slots per chunk, num_red * D floats each.
inline size_t bwd_workspace_floats(const RmsNormBwdParams& p, const RowPlan& l) {
  if (l.num_red == 0 || l.grid <= 1) return 0;
  return 2 * static_cast<size_t>(l.grid) * static_cast<size_t>(l.num_red) * static_cast<size_t>(p.dim);
}

// The finalize grid: x over groups of kFinBoundaries chunk boundaries, y over 32-column tiles.
inline int64_t fin_grid_x(const RowPlan& l) {
  return std::min(ceil_div(l.grid - 1, kFinBoundaries), kMaxGridX);
}
inline size_t fin_smem_bytes() { return kFinWarps * kFinCols * sizeof(float) + sizeof(unsigned); }
inline int64_t fin_grid_y(const RmsNormBwdParams& p, const RowPlan& l) {
  return std::min(ceil_div(l.num_red * p.dim, kFinCols), kMaxGridY);
}

// ---- when 16-byte accesses are allowed: every row start must stay 16-byte aligned ----

inline bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// Rows of V elements starting at `ptr`, `stride` elements apart (a null tensor is not used).
inline bool rows_aligned(const void* ptr, int64_t stride, int v) {
  return ptr == nullptr || (aligned16(ptr) && stride % v == 0);
}

// fp32 per-segment rows (mult, shift) and accumulators are read and written V >= 4 floats at a time
// at columns that are multiples of V, so they need 16-byte aligned rows too.
inline bool fwd_vectorizable(const RmsNormFwdParams& p, int v) {
  return v > 1 && p.dim % v == 0 && rows_aligned(p.x, p.x_row_stride, v) &&
         rows_aligned(p.y, p.dim, v) && rows_aligned(p.mult, p.mult_seg_stride, 4) &&
         rows_aligned(p.shift, p.dim, 4) && rows_aligned(p.residual, p.residual_row_stride, v);
}

inline bool bwd_vectorizable(const RmsNormBwdParams& p, int v) {
  return v > 1 && p.dim % v == 0 && rows_aligned(p.x, p.x_row_stride, v) &&
         rows_aligned(p.grad_y, p.grad_y_row_stride, v) && rows_aligned(p.grad_x, p.dim, v) &&
         rows_aligned(p.mult, p.mult_seg_stride, 4) && rows_aligned(p.grad_mult, p.dim, 4) &&
         rows_aligned(p.grad_shift, p.dim, 4);
}

}  // namespace lavin_fast::rms_norm_kernels
