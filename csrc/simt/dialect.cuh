// The portable kernel dialect: everything a kernel of this project may use from CUDA, behind names
// that the host SIMT emulator implements too. The same kernel source is compiled by nvcc (this file
// maps the names to the real intrinsics) and by g++ against the emulator (dialect_host.h: threads as
// fibers, emulator-owned shared memory, checked shuffles and barriers). docs/simt.md has the rules
// in full and says how to run a kernel under the emulator. In short:
//  - Qualifiers only through LF_GLOBAL / LF_DEVICE / LF_HOST_DEVICE / LF_LAUNCH_BOUNDS; unrolling
//    through LF_UNROLL / LF_UNROLL_BY(n). Arrays meant to live in registers are indexed only inside
//    fully unrolled loops.
//  - From CUDA itself, only threadIdx / blockIdx / blockDim / gridDim and float math (rsqrtf,
//    tanhf, expf, fminf, ...). Blocks are 1-D (lane_id / warp_id assume it).
//  - Warp collectives only through lf::shfl* / lf::ballot / lf::any / lf::all / lf::syncwarp, block
//    barriers only lf::syncthreads, atomics only lf::atomic_*. Every lane named in a mask calls the
//    collective, with the same mask (the emulator checks).
//  - Shared memory only through lf::dynamic_smem<T>() or LF_SHARED_ARRAY, so the emulator can own it
//    and poison it at each block start. Never read it before writing it.
//  - Global memory through plain pointers; 16-byte accesses through lf::load16 / lf::store16 (uint4
//    values) on 16-byte aligned addresses, reinterpretation through lf::bit_cast.
//  - bf16 / fp16 only as lf::bf16 / lf::fp16 and converted through lf::to_float / lf::from_float.
//  - Tensor cores and async copies only through simt/tensor_core.cuh (lf::mma_m16n8k16,
//    lf::ldmatrix_*) and simt/cp_async.cuh (lf::cp_async, cp_async_commit, cp_async_wait); no inline
//    PTX in kernels (the emulator cannot run it). cp.async destinations are read only after the wait
//    that retires their group (and, by other threads, after a following lf::syncthreads()).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define LF_DEVICE __device__ __forceinline__
#define LF_GLOBAL __global__
#define LF_HOST_DEVICE __host__ __device__ __forceinline__
#define LF_SHARED_ARRAY(T, name, n) __shared__ T name[n]
#define LF_LAUNCH_BOUNDS(max_threads) __launch_bounds__(max_threads)
// With a minimum of resident blocks per SM: ptxas then sizes registers for that occupancy instead of
// its own default (which, at 128 threads, caps a kernel at 168 registers and may spill).
#define LF_LAUNCH_BOUNDS_MIN(max_threads, min_blocks) __launch_bounds__(max_threads, min_blocks)
#define LF_UNROLL _Pragma("unroll")
#define LF_PRAGMA_(text) _Pragma(#text)
#define LF_UNROLL_BY(n) LF_PRAGMA_(unroll n)

namespace lf {

using bf16 = __nv_bfloat16;
using fp16 = __half;

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

LF_DEVICE int lane_id() { return static_cast<int>(threadIdx.x) & (kWarpSize - 1); }
LF_DEVICE int warp_id() { return static_cast<int>(threadIdx.x) / kWarpSize; }

// Shuffles follow PTX shfl.sync (see docs/spec/simt_emulation.md for the exact rules the
// emulator reproduces). T: 32-bit int / unsigned / float, or 64-bit types (two shuffles).
template <typename T>
LF_DEVICE T shfl_xor(unsigned mask, T v, int lane_mask, int width = kWarpSize) {
  return __shfl_xor_sync(mask, v, lane_mask, width);
}
template <typename T>
LF_DEVICE T shfl(unsigned mask, T v, int src_lane, int width = kWarpSize) {
  return __shfl_sync(mask, v, src_lane, width);
}
template <typename T>
LF_DEVICE T shfl_down(unsigned mask, T v, unsigned delta, int width = kWarpSize) {
  return __shfl_down_sync(mask, v, delta, width);
}
template <typename T>
LF_DEVICE T shfl_up(unsigned mask, T v, unsigned delta, int width = kWarpSize) {
  return __shfl_up_sync(mask, v, delta, width);
}

// Bit n set iff lane n is named in `mask` and its predicate is true.
LF_DEVICE unsigned ballot(unsigned mask, bool pred) { return __ballot_sync(mask, pred); }
LF_DEVICE bool any(unsigned mask, bool pred) { return __any_sync(mask, pred) != 0; }
LF_DEVICE bool all(unsigned mask, bool pred) { return __all_sync(mask, pred) != 0; }

LF_DEVICE void syncthreads() { __syncthreads(); }
LF_DEVICE void syncwarp(unsigned mask = kFullMask) { __syncwarp(mask); }

// The block's dynamic shared memory (the launch's third <<<>>> argument), 16-byte aligned.
// All extern __shared__ arrays alias one another: this is the only one kernels declare.
template <typename T>
LF_DEVICE T* dynamic_smem() {
  extern __shared__ __align__(16) unsigned char lf_dynamic_smem_[];
  return reinterpret_cast<T*>(lf_dynamic_smem_);
}

// Round-to-nearest-even conversions, the rounding ATen's CPU kernels use.
LF_DEVICE float to_float(float v) { return v; }
LF_DEVICE float to_float(bf16 v) { return __bfloat162float(v); }
LF_DEVICE float to_float(fp16 v) { return __half2float(v); }

template <typename T>
LF_DEVICE T from_float(float v);
template <>
LF_DEVICE float from_float<float>(float v) { return v; }
template <>
LF_DEVICE bf16 from_float<bf16>(float v) { return __float2bfloat16_rn(v); }
template <>
LF_DEVICE fp16 from_float<fp16>(float v) { return __float2half_rn(v); }

// Atomics on global or shared memory; each returns the old value.
template <typename T>
LF_DEVICE T atomic_add(T* p, T v) { return atomicAdd(p, v); }
template <typename T>
LF_DEVICE T atomic_max(T* p, T v) { return atomicMax(p, v); }
template <typename T>
LF_DEVICE T atomic_cas(T* p, T compare, T v) { return atomicCAS(p, compare, v); }

}  // namespace lf

#else  // !__CUDACC__: g++ against the SIMT emulator

#include "simt/dialect_host.h"

#endif

// The same on both sides: plain C++ over the qualifiers and uint4 each side defines.
namespace lf {

// 16-byte global accesses (one LDG.128 / STG.128 on the GPU). `p` must be 16-byte aligned.
LF_DEVICE uint4 load16(const void* p) { return *static_cast<const uint4*>(p); }
LF_DEVICE void store16(void* p, uint4 v) { *static_cast<uint4*>(p) = v; }

template <typename To, typename From>
LF_HOST_DEVICE To bit_cast(const From& v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
  return __builtin_bit_cast(To, v);
}

}  // namespace lf
