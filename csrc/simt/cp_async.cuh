// The dialect's asynchronous global -> shared copies (cp.async, sm_80+): per-thread copies grouped by
// cp_async_commit() and awaited with cp_async_wait<N>() (wait_group N: all but the N most recent
// groups complete). The copied data is visible to the issuing thread after the wait and to the rest of
// the block only after a following lf::syncthreads(). Under the host SIMT emulator each thread's
// lf::emu::CpAsyncQueue poisons destinations at issue and copies at the retiring wait (see
// cp_async_host.h), so reading too early fails tests.
#pragma once

#include <cstdint>

#include "simt/dialect.cuh"

#if defined(__CUDACC__)

#include "simt/ptx_address.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "simt/cp_async.cuh: cp.async needs sm_80 or newer"
#endif

namespace lf {

// Copies Bytes (4, 8 or 16) from global to shared memory: the first src_bytes (0..Bytes) are read, the
// rest of the destination is zero-filled (src_bytes = 0 for an out-of-bounds row still needs a valid
// gmem_src). Both addresses aligned to Bytes. 16-byte copies use .cg (bypass L1: streamed tiles are
// not reused through it); PTX allows .cg only for 16 bytes, so smaller ones use .ca.
template <int Bytes>
LF_DEVICE void cp_async(void* smem_dst, const void* gmem_src, int src_bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
  const uint32_t dst = detail::smem_u32(smem_dst);
  const uint64_t src = __cvta_generic_to_global(gmem_src);
  if constexpr (Bytes == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                 :: "r"(dst), "l"(src), "r"(src_bytes) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n"
                 :: "r"(dst), "l"(src), "n"(Bytes), "r"(src_bytes) : "memory");
}

// cp.async.commit_group: closes this thread's group of copies issued since the last commit.
LF_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// cp.async.wait_group N: returns when at most the N most recent groups are still pending.
template <int N>
LF_DEVICE void cp_async_wait() {
  static_assert(N >= 0, "cp_async_wait<N>: N >= 0");
  asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory");
}

}  // namespace lf

#elif defined(LF_SIMT_EMULATOR)

// Each emulated thread's queue lives in its per-thread state (simt/runtime.h), created on first use
// and dropped when the block ends.
#include "simt/cp_async_host.h"

namespace lf {
namespace emu {
inline CpAsyncQueue& this_thread_cp_async() { return thread_state<CpAsyncQueue>(); }
}  // namespace emu

template <int Bytes>
LF_DEVICE void cp_async(void* smem_dst, const void* gmem_src, int src_bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async copies 4, 8 or 16 bytes");
  emu::this_thread_cp_async().issue(smem_dst, gmem_src, Bytes, src_bytes);
}
LF_DEVICE void cp_async_commit() { emu::this_thread_cp_async().commit(); }
template <int N>
LF_DEVICE void cp_async_wait() {
  static_assert(N >= 0, "cp_async_wait<N>: N >= 0");
  emu::this_thread_cp_async().wait(N);
}

}  // namespace lf

#else
#error "simt/cp_async.cuh: needs nvcc or the host SIMT emulator (LF_SIMT_EMULATOR)"
#endif
