// Tiles of the CPU attention kernels: segments, which (query block, key tile) pairs are visible under
// the masks, and the work queue (per-ISA header, like attention_cpu_gemm.h).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention/attention_params.h"

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

struct Segment {
  int s;
  int64_t q0, lq, k0, lk;  // first row and length on the query and key sides
};

inline Segment segment(const VarlenAttentionFwdParams& p, int s) {
  return {s, p.cu_seqlens_q[s], p.cu_seqlens_q[s + 1] - p.cu_seqlens_q[s], p.cu_seqlens_k[s],
          p.cu_seqlens_k[s + 1] - p.cu_seqlens_k[s]};
}

enum class Visibility { kNone, kPartial, kFull };

// The masks of one segment (attention_params.h): per element, and per block of query rows
// [i0, i0 + nq) x keys [j0, j0 + nk), all relative to the segment start.
struct SegmentMask {
  const AttentionMask& m;
  Segment g;

  bool visible(int64_t i, int64_t j) const {
    if (m.causal && j > i + (g.lk - g.lq)) return false;
    if (m.frame_q && m.frame_k[g.k0 + j] > m.frame_q[g.q0 + i]) return false;
    if (m.tile_mask && !m.tile_mask[(static_cast<int64_t>(g.s) * m.n_tiles_q + i / m.tile_q) * m.n_tiles_k +
                                    j / m.tile_k])
      return false;
    return true;
  }

  // Frame range of query rows [i0, i0 + nq): computed once per block.
  struct Frames {
    int32_t lo = 0, hi = 0;
  };
  Frames query_frames(int64_t i0, int64_t nq) const {
    Frames f;
    if (!m.frame_q) return f;
    f.lo = std::numeric_limits<int32_t>::max();
    f.hi = std::numeric_limits<int32_t>::min();
    for (int64_t i = i0; i < i0 + nq; ++i) {
      f.lo = std::min(f.lo, m.frame_q[g.q0 + i]);
      f.hi = std::max(f.hi, m.frame_q[g.q0 + i]);
    }
    return f;
  }

  // kNone: no element visible (the pair costs nothing); kFull: every element visible (no element
  // masking); kPartial otherwise (possibly none visible after all: correct, only not skipped).
  Visibility block(int64_t i0, int64_t nq, int64_t j0, int64_t nk, Frames fq) const {
    bool full = true;
    if (m.causal) {
      const int64_t off = g.lk - g.lq;
      if (j0 > i0 + nq - 1 + off) return Visibility::kNone;
      full &= j0 + nk - 1 <= i0 + off;
    }
    if (m.frame_q) {
      int32_t lo = std::numeric_limits<int32_t>::max(), hi = std::numeric_limits<int32_t>::min();
      for (int64_t j = j0; j < j0 + nk; ++j) {
        lo = std::min(lo, m.frame_k[g.k0 + j]);
        hi = std::max(hi, m.frame_k[g.k0 + j]);
      }
      if (lo > fq.hi) return Visibility::kNone;
      full &= hi <= fq.lo;
    }
    if (m.tile_mask) {
      const uint8_t* t = m.tile_mask + static_cast<int64_t>(g.s) * m.n_tiles_q * m.n_tiles_k;
      int64_t set = 0, all = 0;
      for (int64_t tq = i0 / m.tile_q; tq <= (i0 + nq - 1) / m.tile_q; ++tq)
        for (int64_t tk = j0 / m.tile_k; tk <= (j0 + nk - 1) / m.tile_k; ++tk, ++all)
          set += t[tq * m.n_tiles_k + tk] != 0;
      if (set == 0) return Visibility::kNone;
      full &= set == all;
    }
    return full ? Visibility::kFull : Visibility::kPartial;
  }

  // Additive mask (0 or -inf) of a partial block, transposed: (nk, nq), key-major.
  void fill_transposed(int64_t i0, int64_t nq, int64_t j0, int64_t nk, float* out) const {
    for (int64_t j = 0; j < nk; ++j)
      for (int64_t i = 0; i < nq; ++i) out[j * nq + i] = visible(i0 + i, j0 + j) ? 0.f : kNegInf;
  }

  // Additive mask (0 or -inf) of a partial block, (nq, ld); columns nk..ld are padding (-inf).
  void fill(int64_t i0, int64_t nq, int64_t j0, int64_t nk, int64_t ld, float* out) const {
    for (int64_t i = 0; i < nq; ++i) {
      float* row = out + i * ld;
      for (int64_t j = 0; j < nk; ++j) row[j] = visible(i0 + i, j0 + j) ? 0.f : kNegInf;
      for (int64_t j = nk; j < ld; ++j) row[j] = kNegInf;
    }
  }
};

// A unit of parallel work: segment s, KV head hk (with its G query heads), rows [r0, r0 + n) on the
// side the pass iterates over (query rows for the forward and dQ, keys for dK/dV).
struct WorkItem {
  int s, hk;
  int64_t r0, n;
  int64_t cost;
};

// Runs f(item, thread_state) over the items: largest first, each thread taking the next item from a
// shared counter, so segments of very different lengths still balance. Every item writes only its own
// outputs, in an order fixed by the item, so results do not depend on the number of threads.
template <typename MakeState, typename F>
void run_work(std::vector<WorkItem>& items, const MakeState& make_state, const F& f) {
  std::stable_sort(items.begin(), items.end(),
                   [](const WorkItem& a, const WorkItem& b) { return a.cost > b.cost; });
  std::atomic<int64_t> next{0};
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    auto st = make_state();
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) f(items[i], st);
  });
}

// Whether run_work would spread `items` over `threads` with a makespan within `slack` of a perfect
// split (the same largest-first greedy assignment, simulated on the costs).
inline bool balanced(std::vector<WorkItem> items, int threads, double slack) {
  if (items.empty() || threads <= 1) return true;
  std::sort(items.begin(), items.end(), [](const WorkItem& a, const WorkItem& b) { return a.cost > b.cost; });
  std::vector<double> load(threads, 0.0);
  double total = 0.0;
  for (const WorkItem& it : items) {
    *std::min_element(load.begin(), load.end()) += static_cast<double>(it.cost);
    total += static_cast<double>(it.cost);
  }
  return *std::max_element(load.begin(), load.end()) <= slack * total / threads;
}

}  // namespace CPU_CAPABILITY
}  // namespace lavin_fast::cpu
