// common/check.h: the row view the kernels rely on (uniform_row_stride) and the cu_seqlens validation.
#include <ATen/ATen.h>

#include "common/check.h"
#include "tests/expect.h"

using lavin_fast::check_cu_seqlens;
using lavin_fast::uniform_row_stride;

namespace {

at::Tensor cu(std::vector<int32_t> v) { return at::tensor(v, at::kInt); }

void test_uniform_row_stride() {
  const auto f = at::kFloat;
  // Contiguous: rows of D elements, whatever the number of leading dims.
  EXPECT_EQ(uniform_row_stride(at::empty({8}, f)), 8);
  EXPECT_EQ(uniform_row_stride(at::empty({4, 8}, f)), 8);
  EXPECT_EQ(uniform_row_stride(at::empty({2, 3, 8}, f)), 8);
  EXPECT_EQ(uniform_row_stride(at::empty({1, 4, 1, 8}, f)), 8);
  // Sliced from a wider projection: row stride > D, zero-copy.
  EXPECT_EQ(uniform_row_stride(at::empty({4, 24}, f).slice(1, 0, 8)), 24);
  EXPECT_EQ(uniform_row_stride(at::empty({2, 3, 24}, f).slice(2, 8, 16)), 24);
  // Last dim of size 1 needs no unit stride.
  EXPECT_EQ(uniform_row_stride(at::empty({4, 3}, f).slice(1, 0, 1)), 3);
  // Expanded (an expanded gradient): stride 0.
  EXPECT_EQ(uniform_row_stride(at::empty({8}, f).expand({4, 8})), 0);
  EXPECT_EQ(uniform_row_stride(at::empty({8}, f).expand({2, 3, 8})), 0);
  // Not collapsible to one row stride: -1.
  EXPECT_EQ(uniform_row_stride(at::empty({3, 2, 8}, f).permute({1, 0, 2})), -1);
  EXPECT_EQ(uniform_row_stride(at::empty({2, 5, 8}, f).slice(1, 0, 3)), -1);  // gap between dims
  EXPECT_EQ(uniform_row_stride(at::empty({4, 8}, f).t()), -1);  // last dim not contiguous
  EXPECT_EQ(uniform_row_stride(at::empty({}, f)), -1);
}

void test_check_cu_seqlens_accepts() {
  EXPECT_EQ(check_cu_seqlens("op", cu({0, 3, 5}), 5), 2);
  EXPECT_EQ(check_cu_seqlens("op", cu({0, 3, 3, 5, 5}), 5), 4);  // empty segments
  EXPECT_EQ(check_cu_seqlens("op", cu({0}), 0), 0);              // no segment
  EXPECT_EQ(check_cu_seqlens("op", cu({0, 0, 0}), 0), 2);        // only empty segments
  // Non-contiguous: every other element of {0, 9, 3, 9, 5} is {0, 3, 5}.
  EXPECT_EQ(check_cu_seqlens("op", cu({0, 9, 3, 9, 5}).slice(0, 0, 5, 2), 5), 2);
}

void test_check_cu_seqlens_rejects() {
  EXPECT_THROWS(c10::ValueError, "'cu_seqlens' must start at 0", check_cu_seqlens("op", cu({1, 3, 5}), 5));
  EXPECT_THROWS(c10::ValueError, "'cu_seqlens' must be non-decreasing",
                check_cu_seqlens("op", cu({0, 4, 3, 5}), 5));
  EXPECT_THROWS(c10::ValueError, "'cu_seqlens' must end at the number of tokens 5",
                check_cu_seqlens("op", cu({0, 3, 4}), 5));
  EXPECT_THROWS(c10::ValueError, "'cu_seqlens' must end", check_cu_seqlens("op", cu({0, 3, 6}), 5));
  EXPECT_THROWS(c10::TypeError, "'cu_seqlens' must have dtype int32, got int64",
                check_cu_seqlens("op", at::tensor({0, 3, 5}, at::kLong), 5));
  EXPECT_THROWS(c10::ValueError, "'cu_seqlens' must be 1-D",
                check_cu_seqlens("op", cu({0, 3, 5}).view({1, 3}), 5));
  EXPECT_THROWS(c10::ValueError, "'cu_seqlens' must be 1-D", check_cu_seqlens("op", cu({}), 0));
  // The op's name leads the message.
  EXPECT_THROWS(c10::ValueError, "lavin_fast.some_op: argument 'cu_seqlens'",
                check_cu_seqlens("lavin_fast.some_op", cu({1, 5}), 5));
}

}  // namespace

int main() {
  lf_test::run("test_uniform_row_stride", test_uniform_row_stride);
  lf_test::run("test_check_cu_seqlens_accepts", test_check_cu_seqlens_accepts);
  lf_test::run("test_check_cu_seqlens_rejects", test_check_cu_seqlens_rejects);
  return lf_test::finish();
}
