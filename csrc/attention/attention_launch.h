// How the attention kernels are launched, shared by the CUDA launchers (attention_cuda_hd*.cu, nvcc)
// and the emulator's (attention_simt_launch.cpp, g++): what the kernels take, the grids, the kernels in
// order. Only the launch itself differs, behind `launch`, a callable
//   bool launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, args...)
// returning whether the launch went through (the CUDA one raises the dynamic shared memory limit
// first when smem > 48 KiB). Templates of the launcher and the head dim, so each CUDA file compiles
// the kernels of one head dim.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "attention/attention_bwd_kernel.cuh"
#include "attention/attention_fwd_kernel.cuh"
#include "attention/attention_params.h"
#include "attention/attention_plan.h"
#include "common/elem_type.h"
#include "common/launch_status.h"

namespace lavin_fast::attention_kernels {

using ::lavin_fast::LaunchStatus;

inline bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// cp.async copies 16 bytes: every row of q, k, v (and grad_out) starts 16-byte aligned.
inline bool layout_supported(const VarlenAttentionFwdParams& p) {
  auto rows_ok = [](const void* ptr, int64_t row_stride, int64_t head_stride) {
    return aligned16(ptr) && row_stride % 8 == 0 && head_stride % 8 == 0;
  };
  return unsupported(p.dtype, p.head_dim, p.num_heads) == nullptr && p.num_kv_heads >= 1 &&
         p.num_heads % p.num_kv_heads == 0 && rows_ok(p.q, p.q_row_stride, p.q_head_stride) &&
         rows_ok(p.k, p.k_row_stride, p.k_head_stride) && rows_ok(p.v, p.v_row_stride, p.v_head_stride);
}

inline unsigned tiles(int64_t n, int tile) { return static_cast<unsigned>((n + tile - 1) / tile); }

// Grid x spans the longest segment's rows. max_seqlen is only a bound the caller promises (2^31 - 1 is
// valid) and no segment holds more rows than the whole batch, so the grid takes the smaller: blocks
// past a segment's end exit at once, but each still costs a launch slot (and the emulator a pass over
// the block's threads), so a loose max_seqlen must not size the grid.
inline int64_t longest_q(const VarlenAttentionFwdParams& p) {
  return std::min<int64_t>(p.max_seqlen_q, p.total_q);
}
inline int64_t longest_k(const VarlenAttentionFwdParams& p) {
  return std::min<int64_t>(p.max_seqlen_k, p.total_k);
}

// Segments index grid z, at most 65535 per launch: a larger batch launches launch_chunk(c) per chunk
// of segments, c being p with cu_seqlens (and the tile mask) advanced to the chunk's first segment.
// Rows stay absolute (cu_seqlens values), so outputs, lse and workspaces need no offset.
template <typename P, typename F>
bool for_segment_chunks(const P& p, F&& launch_chunk) {
  for (int64_t first = 0; first < p.num_segments; first += kMaxGridYZ) {
    P c = p;
    c.num_segments = static_cast<int>(std::min<int64_t>(p.num_segments - first, kMaxGridYZ));
    c.cu_seqlens_q += first;
    c.cu_seqlens_k += first;
    if (c.mask.tile_mask) c.mask.tile_mask += first * p.mask.n_tiles_q * p.mask.n_tiles_k;
    if (!launch_chunk(c)) return false;
  }
  return true;
}

// Query heads of a GQA group packed into one forward block: the largest power of two dividing the
// group, at most 16 (a block keeps >= 4 queries).
inline int fwd_pack(const VarlenAttentionFwdParams& p) {
  const int group = p.num_heads / p.num_kv_heads;
  int pack = 1;
  while (pack < 16 && group % (2 * pack) == 0) pack *= 2;
  return pack;
}

template <typename T, int D, typename Launch>
LaunchStatus fwd_typed(const VarlenAttentionFwdParams& p, Launch& launch) {
  if (longest_q(p) <= 0 || p.num_segments <= 0) return LaunchStatus::kOk;
  const int pack = fwd_pack(p);
  return for_segment_chunks(p, [&](const VarlenAttentionFwdParams& c) {
           const dim3 grid(tiles(longest_q(c), kFwdBM / pack), static_cast<unsigned>(c.num_heads / pack),
                           static_cast<unsigned>(c.num_segments));
           return launch("attention_fwd_kernel", &attention_fwd_kernel<T, D>, grid, dim3(kThreads),
                         fwd_smem_bytes<D>(sizeof(T)), c, pack);
         })
             ? LaunchStatus::kOk
             : LaunchStatus::kFailed;
}

// workspace: bwd_workspace_floats_for(p) floats, zero-filled (p.workspace).
template <typename T, int D, typename Launch>
LaunchStatus bwd_typed(const VarlenAttentionBwdParams& p, Launch& launch) {
  if (!layout_supported(p) || !aligned16(p.grad_out) || p.grad_out_row_stride % 8 != 0 ||
      p.grad_out_head_stride % 8 != 0 || p.workspace_floats < bwd_workspace_floats_for(p) ||
      (p.workspace_floats > 0 && p.workspace == nullptr))
    return LaunchStatus::kUnsupported;
  if (p.num_segments <= 0) return LaunchStatus::kOk;
  const int64_t items = p.total_q * p.num_heads;
  if (items > 0 && !launch("attention_bwd_preprocess_kernel", &attention_bwd_preprocess_kernel<T>,
                           dim3(tiles(items, kWarps)), dim3(kThreads), size_t{0}, p))
    return LaunchStatus::kFailed;
  if (longest_k(p) > 0 && !for_segment_chunks(p, [&](const VarlenAttentionBwdParams& c) {
        const dim3 grid(tiles(longest_k(c), kBwdBN), static_cast<unsigned>(c.num_kv_heads),
                        static_cast<unsigned>(c.num_segments));
        return launch("attention_bwd_kernel", &attention_bwd_kernel<T, D>, grid, dim3(kThreads),
                      bwd_smem_bytes<D>(sizeof(T)), c, !c.deterministic);
      }))
    return LaunchStatus::kFailed;
  if (items == 0 || longest_q(p) <= 0) return LaunchStatus::kOk;
  if (p.deterministic) {
    return for_segment_chunks(p, [&](const VarlenAttentionBwdParams& c) {
             const dim3 grid(tiles(longest_q(c), kDqBM), static_cast<unsigned>(c.num_heads),
                             static_cast<unsigned>(c.num_segments));
             return launch("attention_bwd_dq_kernel", &attention_bwd_dq_kernel<T, D>, grid, dim3(kThreads),
                           dq_smem_bytes<D>(sizeof(T)), c);
           })
               ? LaunchStatus::kOk
               : LaunchStatus::kFailed;
  }
  const int64_t n = items * p.head_dim;
  const int64_t blocks = (n + 255) / 256 < (int64_t{1} << 20) ? (n + 255) / 256 : (int64_t{1} << 20);
  return launch("attention_bwd_dq_convert_kernel", &attention_bwd_dq_convert_kernel<T>,
                dim3(static_cast<unsigned>(blocks)), dim3(256), size_t{0}, p)
             ? LaunchStatus::kOk
             : LaunchStatus::kFailed;
}

// One head dim, both dtypes: what each CUDA file instantiates.
template <int D, typename Launch>
LaunchStatus launch_fwd_hd(const VarlenAttentionFwdParams& p, Launch& launch) {
  if (!layout_supported(p) || p.head_dim != D) return LaunchStatus::kUnsupported;
  return p.dtype == ElemType::kBFloat16 ? fwd_typed<lf::bf16, D>(p, launch) : fwd_typed<lf::fp16, D>(p, launch);
}

template <int D, typename Launch>
LaunchStatus launch_bwd_hd(const VarlenAttentionBwdParams& p, Launch& launch) {
  if (p.head_dim != D) return LaunchStatus::kUnsupported;
  return p.dtype == ElemType::kBFloat16 ? bwd_typed<lf::bf16, D>(p, launch) : bwd_typed<lf::fp16, D>(p, launch);
}

// Every head dim (the emulator's launcher compiles them all in one file).
template <typename Launch>
LaunchStatus launch_fwd(const VarlenAttentionFwdParams& p, Launch& launch) {
  return static_switch(CudaHeadDims{}, p.head_dim, LaunchStatus::kUnsupported,
                       [&](auto d) { return launch_fwd_hd<decltype(d)::value>(p, launch); });
}

template <typename Launch>
LaunchStatus launch_bwd(const VarlenAttentionBwdParams& p, Launch& launch) {
  return static_switch(CudaHeadDims{}, p.head_dim, LaunchStatus::kUnsupported,
                       [&](auto d) { return launch_bwd_hd<decltype(d)::value>(p, launch); });
}

}  // namespace lavin_fast::attention_kernels
