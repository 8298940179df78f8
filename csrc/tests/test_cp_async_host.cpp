// simt/cp_async_host.h: a destination holds poison from issue until the wait that retires its group,
// then the source as it was at that wait, zero-filled past src-size; wait_group N keeps the N newest
// groups pending; empty groups; misuse throws.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "simt/cp_async_host.h"
#include "tests/expect.h"

using lf::emu::CpAsyncQueue;

namespace {

struct Buffers {
  alignas(16) unsigned char src[64];
  alignas(16) unsigned char dst[64];
  Buffers() {
    for (int i = 0; i < 64; ++i) src[i] = static_cast<unsigned char>(i + 1), dst[i] = 0xaa;
  }
  bool poisoned(int off, int n) const {
    for (int i = off; i < off + n; ++i)
      if (dst[i] != CpAsyncQueue::kPoison) return false;
    return true;
  }
  bool copied(int off, int n, int src_off) const { return std::memcmp(dst + off, src + src_off, n) == 0; }
  bool zero(int off, int n) const {
    for (int i = off; i < off + n; ++i)
      if (dst[i] != 0) return false;
    return true;
  }
};

void poison_until_wait() {
  Buffers b;
  CpAsyncQueue q;
  q.issue(b.dst, b.src, 16, 16);
  EXPECT(b.poisoned(0, 16));
  EXPECT_EQ(int(b.dst[16]), 0xaa);  // only the destination's cp-size bytes
  float f;
  std::memcpy(&f, b.dst, 4);
  EXPECT(std::isnan(f));  // what a kernel reading too early computes with
  q.commit();
  EXPECT(b.poisoned(0, 16));  // committing is not waiting
  b.src[0] = 99;               // the copy reads the source when it is performed
  q.wait(0);
  EXPECT(b.copied(0, 16, 0));
  EXPECT_EQ(int(b.dst[0]), 99);
  EXPECT_EQ(q.pending_groups(), size_t{0});
}

void zero_fill_past_src_size() {
  Buffers b;
  CpAsyncQueue q;
  q.issue(b.dst, b.src, 16, 5);
  q.issue(b.dst + 16, b.src + 16, 8, 0);  // src-size 0: all zeros (out-of-bounds rows of a tile)
  q.issue(b.dst + 24, b.src + 24, 4, 4);
  q.commit();
  q.wait(0);
  EXPECT(b.copied(0, 5, 0));
  EXPECT(b.zero(5, 11));
  EXPECT(b.zero(16, 8));
  EXPECT(b.copied(24, 4, 24));
}

// The double-buffered k-loop: stage s+1 issued before waiting on stage s with wait_group 1.
void wait_keeps_newest_groups_pending() {
  Buffers b;
  CpAsyncQueue q;
  q.issue(b.dst, b.src, 16, 16);
  q.commit();
  q.issue(b.dst + 16, b.src + 16, 16, 16);
  q.commit();
  q.issue(b.dst + 32, b.src + 32, 16, 16);
  q.commit();
  q.wait(2);
  EXPECT(b.copied(0, 16, 0));
  EXPECT(b.poisoned(16, 32));
  EXPECT_EQ(q.pending_groups(), size_t{2});
  q.wait(1);
  EXPECT(b.copied(16, 16, 16));
  EXPECT(b.poisoned(32, 16));
  q.wait(5);  // more than pending: nothing to do
  EXPECT(b.poisoned(32, 16));
  q.wait(0);
  EXPECT(b.copied(32, 16, 32));
}

// Empty groups count as groups (and are complete); copies after the last commit are in no group.
void empty_groups_and_uncommitted_copies() {
  Buffers b;
  CpAsyncQueue q;
  q.issue(b.dst, b.src, 16, 16);
  q.commit();
  q.commit();  // empty: a pipeline's tail iterations commit nothing
  q.wait(1);   // retires the first group, leaves the empty one
  EXPECT(b.copied(0, 16, 0));
  EXPECT_EQ(q.pending_groups(), size_t{1});
  q.issue(b.dst + 16, b.src + 16, 16, 16);
  q.wait(0);
  EXPECT(b.poisoned(16, 16));  // never committed: wait_group does not cover it
  EXPECT_EQ(q.open_copies(), size_t{1});
  q.commit();
  q.wait(0);
  EXPECT(b.copied(16, 16, 16));
  EXPECT_EQ(q.open_copies(), size_t{0});
}

void misuse_throws() {
  Buffers b;
  CpAsyncQueue q;
  using lf::emu::DialectError;
  EXPECT_THROWS(DialectError, "cp-size must be 4, 8 or 16", q.issue(b.dst, b.src, 12, 12));
  EXPECT_THROWS(DialectError, "src-size 17 outside", q.issue(b.dst, b.src, 16, 17));
  EXPECT_THROWS(DialectError, "src-size -1 outside", q.issue(b.dst, b.src, 16, -1));
  EXPECT_THROWS(DialectError, "destination not aligned to its cp-size 16", q.issue(b.dst + 8, b.src, 16, 16));
  EXPECT_THROWS(DialectError, "source not aligned to its cp-size 16", q.issue(b.dst, b.src + 4, 16, 16));
  EXPECT_THROWS(DialectError, "not aligned to its cp-size 8", q.issue(b.dst + 4, b.src, 8, 8));
  EXPECT_THROWS(DialectError, "null address", q.issue(b.dst, nullptr, 16, 16));
  EXPECT_THROWS(DialectError, "null address", q.issue(b.dst, nullptr, 16, 0));  // even if nothing is read
  EXPECT_THROWS(DialectError, "source not aligned", q.issue(b.dst, b.src + 1, 16, 0));
  EXPECT_THROWS(DialectError, "negative group count", q.wait(-1));
  EXPECT_EQ(int(b.dst[0]), 0xaa);  // a rejected copy leaves no trace
  EXPECT_EQ(q.open_copies(), size_t{0});
  q.issue(b.dst + 4, b.src + 8, 4, 4);  // 4-byte copies need 4-byte alignment only
  EXPECT_EQ(q.open_copies(), size_t{1});
}

}  // namespace

int main() {
  lf_test::run("poison_until_wait", poison_until_wait);
  lf_test::run("zero_fill_past_src_size", zero_fill_past_src_size);
  lf_test::run("wait_keeps_newest_groups_pending", wait_keeps_newest_groups_pending);
  lf_test::run("empty_groups_and_uncommitted_copies", empty_groups_and_uncommitted_copies);
  lf_test::run("misuse_throws", misuse_throws);
  return lf_test::finish();
}
