// How rows are grouped into samples, packed (cu_seqlens) or padded (equal lengths): the plain layout
// struct, shared by host and device code, and the row -> segment lookup of the host kernels.
#pragma once

#include <algorithm>
#include <cstdint>

namespace lavin_fast {

struct SegmentLayout {
  const int32_t* cu_seqlens = nullptr;  // (S + 1,) or null for the padded layout
  int64_t num_segments = 1;             // S
  int64_t rows_per_segment = 0;         // padded layout only
};

inline int64_t segment_begin(const SegmentLayout& seg, int64_t s) {
  return seg.cu_seqlens ? seg.cu_seqlens[s] : s * seg.rows_per_segment;
}

// Walks rows in increasing order, starting anywhere: one binary search at construction, then O(1)
// amortised per row. Empty segments are skipped (no row maps to them).
class SegmentCursor {
 public:
  SegmentCursor(const SegmentLayout& seg, int64_t first_row) : seg_(seg) {
    if (seg.cu_seqlens) {
      const int32_t* cu = seg.cu_seqlens;
      s_ = std::upper_bound(cu, cu + seg.num_segments + 1, first_row) - cu - 1;
      end_ = s_ < seg.num_segments ? cu[s_ + 1] : first_row;
    }
  }

  int64_t segment_of(int64_t row) {
    if (!seg_.cu_seqlens) return seg_.rows_per_segment > 0 ? row / seg_.rows_per_segment : 0;
    while (row >= end_) end_ = seg_.cu_seqlens[++s_ + 1];
    return s_;
  }

 private:
  const SegmentLayout& seg_;
  int64_t s_ = 0;
  int64_t end_ = 0;
};

}  // namespace lavin_fast
