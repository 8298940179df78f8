// How rows are grouped into samples: packed (cu_seqlens) or padded (equal lengths). Plain data, shared
// by host and device code.
#pragma once

#include <cstdint>

namespace lavin_fast {

struct SegmentLayout {
  const int32_t* cu_seqlens = nullptr;  // (S + 1,) or null for the padded layout
  int64_t num_segments = 1;             // S
  int64_t rows_per_segment = 0;         // padded layout only
};

}  // namespace lavin_fast
