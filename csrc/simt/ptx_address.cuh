// nvcc only: the address form PTX's .shared operands take. Used by the dialect's PTX wrappers
// (tensor_core.cuh, cp_async.cuh), never by kernels, which pass plain pointers.
#pragma once

#include <cstdint>

namespace lf::detail {

// A generic pointer into shared memory as a 32-bit offset in the shared window (cvta.to.shared):
// ldmatrix and cp.async address shared memory this way, and a 32-bit register is what ptxas wants.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

}  // namespace lf::detail
