#include "common/alloc.h"

#include <ATen/ATen.h>

#include <atomic>
#include <cstdlib>
#include <string_view>
#include <cstdint>
#include <limits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lavin_fast {

namespace {
constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
constexpr int64_t kHugePageMinBytes = int64_t{8} << 20;  // smaller outputs are usually recycled heap
std::atomic<bool> g_poison{false};

// LAVIN_FAST_HUGEPAGES=0 turns the hint off: on a machine whose memory is fragmented, the first
// faults of an advised region compact memory synchronously (seen here: the first ~10 calls of a
// 94 MB output took 130-180 ms before settling at 12 ms).
bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* v = std::getenv("LAVIN_FAST_HUGEPAGES");
    return !(v && std::string_view(v) == "0");
  }();
  return wanted;
}
}  // namespace

void set_poison_outputs(bool on) { g_poison.store(on); }
bool poison_outputs() { return g_poison.load(); }

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor t = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (t.device().is_cpu() && t.nbytes() >= static_cast<size_t>(kHugePageMinBytes) && huge_pages_wanted()) {
    // Advise the 2 MiB-aligned interior of the allocation; a failure (THP disabled) changes nothing.
    const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t lo = (begin + kHugePage - 1) & ~(kHugePage - 1);
    const uintptr_t hi = (begin + t.nbytes()) & ~(kHugePage - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
  }
#endif
  if (poison_outputs()) {
    if (at::isFloatingType(t.scalar_type())) {
      t.fill_(std::numeric_limits<double>::quiet_NaN());
    } else {
      t.fill_(-1);
    }
  }
  return t;
}

}  // namespace lavin_fast
