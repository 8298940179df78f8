// common/segments.h: SegmentCursor against a brute-force row -> segment lookup, from every start row
// (parallel kernels start their cursors mid-sequence), with empty segments anywhere.
#include <random>
#include <sstream>
#include <vector>

#include "common/segments.h"
#include "tests/expect.h"

using lavin_fast::SegmentCursor;
using lavin_fast::SegmentLayout;

namespace {

// The segment s with cu[s] <= row < cu[s + 1] (unique for rows < cu[S], as empty segments hold none).
int64_t brute_segment(const std::vector<int32_t>& cu, int64_t row) {
  for (size_t s = 0; s + 1 < cu.size(); ++s)
    if (cu[s] <= row && row < cu[s + 1]) return static_cast<int64_t>(s);
  return -1;
}

std::string str(const std::vector<int32_t>& cu) {
  std::ostringstream s;
  for (auto c : cu) s << c << " ";
  return s.str();
}

void check_packed(const std::vector<int32_t>& cu) {
  SegmentLayout seg;
  seg.cu_seqlens = cu.data();
  seg.num_segments = static_cast<int64_t>(cu.size()) - 1;
  const int64_t total = cu.back();
  for (int64_t first = 0; first < total; ++first) {
    SegmentCursor c(seg, first);
    for (int64_t r = first; r < total; ++r) {
      const int64_t got = c.segment_of(r), want = brute_segment(cu, r);
      if (got != want) {
        std::ostringstream s;
        s << "cu_seqlens {" << str(cu) << "}, start " << first << ": row " << r << " -> " << got
          << ", expected " << want;
        lf_test::fail(__FILE__, __LINE__, s.str());
        return;
      }
    }
  }
}

void test_packed_fixed() {
  check_packed({0, 3, 3, 4, 4, 9});     // empty segments in the middle, one of length 1
  check_packed({0, 0, 0, 2, 2, 5});     // leading empty segments
  check_packed({0, 2, 2, 2});           // trailing empty segments
  check_packed({0, 1, 2, 3});           // all of length 1
  check_packed({0, 7});                 // one segment
  check_packed({0, 0, 1, 1, 1, 1, 2});  // runs of empty segments
}

void test_packed_random() {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> len(0, 4), nseg(1, 12);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<int32_t> cu{0};
    const int n = nseg(rng);
    for (int s = 0; s < n; ++s) {
      const int l = len(rng);
      cu.push_back(cu.back() + (l <= 1 ? 0 : l - 1));  // ~40% empty
    }
    check_packed(cu);
  }
}

void test_padded() {
  SegmentLayout seg;
  seg.num_segments = 3;
  seg.rows_per_segment = 4;
  for (int64_t first = 0; first < 12; ++first) {
    SegmentCursor c(seg, first);
    for (int64_t r = first; r < 12; ++r) EXPECT_EQ(c.segment_of(r), r / 4);
  }
  SegmentLayout empty;  // rows_per_segment 0: no rows, but must not divide by zero
  empty.rows_per_segment = 0;
  SegmentCursor c(empty, 0);
  EXPECT_EQ(c.segment_of(0), 0);
}

}  // namespace

int main() {
  lf_test::run("test_packed_fixed", test_packed_fixed);
  lf_test::run("test_packed_random", test_packed_random);
  lf_test::run("test_padded", test_padded);
  return lf_test::finish();
}
