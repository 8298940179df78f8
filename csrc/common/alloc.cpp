#include "common/alloc.h"

#include <ATen/ops/empty.h>

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lavin_fast {

namespace {
constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
constexpr int64_t kHugePageMinBytes = int64_t{8} << 20;  // smaller outputs are usually recycled heap
}  // namespace

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor t = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (t.device().is_cpu() && t.nbytes() >= static_cast<size_t>(kHugePageMinBytes)) {
    // Advise the 2 MiB-aligned interior of the allocation; a failure (THP disabled) changes nothing.
    const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t lo = (begin + kHugePage - 1) & ~(kHugePage - 1);
    const uintptr_t hi = (begin + t.nbytes()) & ~(kHugePage - 1);
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
  }
#endif
  return t;
}

}  // namespace lavin_fast
