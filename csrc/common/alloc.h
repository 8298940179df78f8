// Output allocation for the CPU kernels.
#pragma once

#include <ATen/core/Tensor.h>

namespace lavin_fast {

// at::empty, plus (for large CPU tensors on Linux) a transparent-huge-page hint before the memory is
// first touched. Page faults dominate otherwise: on this project's 2-core machines, touching a fresh
// 94 MB output (10240 x 2304 fp32) costs 33 ms in 4 KiB faults and 4 ms in 2 MiB ones, while the
// kernel that fills it runs in about 5 ms. PyTorch offers the same behaviour process-wide
// (THP_MEM_ALLOC_ENABLE=1); this applies it to our outputs only. LAVIN_FAST_HUGEPAGES=0 disables it.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options);

// Test hook: when on, every output from empty_output is filled with NaN (floating) or -1 (integer)
// before a kernel writes it, so a test can prove that every element was written.
void set_poison_outputs(bool on);
bool poison_outputs();

}  // namespace lavin_fast
