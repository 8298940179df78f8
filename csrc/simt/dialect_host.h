// The host side of the portable kernel dialect (simt/dialect.cuh): the same names as the nvcc side,
// implemented by the SIMT emulator (runtime.h, collectives.h) so that kernels compiled by g++ run on
// CPU memory. See docs/simt.md. Only dialect.cuh includes this.
#pragma once

#include <cmath>
#include <cstdint>
#include <source_location>

#include "simt/collectives.h"
#include "simt/host_types.h"
#include "simt/runtime.h"

// Tells the dialect's tensor-core and async-copy headers to use the emulator's side.
#define LF_SIMT_EMULATOR 1

// Kernels are plain (inline) host functions; launch bounds and unrolling do not change what they
// compute, and unrolling would only slow the build.
#define LF_DEVICE inline
#define LF_GLOBAL
#define LF_HOST_DEVICE inline
#define LF_LAUNCH_BOUNDS(max_threads)
#define LF_LAUNCH_BOUNDS_MIN(max_threads, min_blocks)
#define LF_UNROLL
#define LF_UNROLL_BY(n)
// A static shared array, owned by the emulator (poisoned at each block start; the same memory for all
// threads of a block): `name` is a reference to T[n].
#define LF_SHARED_ARRAY(T, name, n)        \
  static const char lf_site_##name = 0;    \
  T(&name)[n] = *reinterpret_cast<T(*)[n]>(::lf::emu::static_smem(&lf_site_##name, sizeof(T[n]), alignof(T)))

// CUDA's spellings of the built-in types, for kernels and launchers.
using lf::emu::dim3;
using lf::emu::float2;
using lf::emu::float4;
using lf::emu::int2;
using lf::emu::int4;
using lf::emu::uint2;
using lf::emu::uint3;
using lf::emu::uint4;

// The math intrinsics our kernels use. The GPU's --use_fast_math versions are approximations (2 ulp):
// the emulator computes them exactly, so tests compare against references with tolerances.
inline float rsqrtf(float x) { return 1.f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __fdividef(float a, float b) { return a / b; }

namespace lf {

using bf16 = emu::bf16;
using fp16 = emu::fp16;

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

inline int lane_id() { return static_cast<int>(emu::this_thread().lane); }
inline int warp_id() { return static_cast<int>(emu::this_thread().warp); }

template <typename T>
T shfl_xor(unsigned mask, T v, int lane_mask, int width = kWarpSize,
           std::source_location site = std::source_location::current()) {
  return emu::shfl<emu::ShflMode::kXor>(mask, v, lane_mask, width, site);
}
template <typename T>
T shfl(unsigned mask, T v, int src_lane, int width = kWarpSize,
       std::source_location site = std::source_location::current()) {
  return emu::shfl<emu::ShflMode::kIdx>(mask, v, src_lane, width, site);
}
template <typename T>
T shfl_down(unsigned mask, T v, unsigned delta, int width = kWarpSize,
            std::source_location site = std::source_location::current()) {
  return emu::shfl<emu::ShflMode::kDown>(mask, v, static_cast<int>(delta), width, site);
}
template <typename T>
T shfl_up(unsigned mask, T v, unsigned delta, int width = kWarpSize,
          std::source_location site = std::source_location::current()) {
  return emu::shfl<emu::ShflMode::kUp>(mask, v, static_cast<int>(delta), width, site);
}

inline unsigned ballot(unsigned mask, bool pred, std::source_location site = std::source_location::current()) {
  return emu::ballot(mask, pred, site);
}
inline bool any(unsigned mask, bool pred, std::source_location site = std::source_location::current()) {
  return emu::ballot(mask, pred, site) != 0;
}
inline bool all(unsigned mask, bool pred, std::source_location site = std::source_location::current()) {
  return emu::ballot(mask, pred, site) == mask;
}

inline void syncthreads(std::source_location site = std::source_location::current()) { emu::syncthreads(site); }
inline void syncwarp(unsigned mask = kFullMask, std::source_location site = std::source_location::current()) {
  emu::syncwarp(mask, site);
}

template <typename T>
T* dynamic_smem() {
  return reinterpret_cast<T*>(emu::dynamic_smem());
}

inline float to_float(float v) { return v; }
inline float to_float(bf16 v) { return emu::bf16_to_float(v); }
inline float to_float(fp16 v) { return emu::fp16_to_float(v); }

template <typename T>
T from_float(float v);
template <>
inline float from_float<float>(float v) { return v; }
template <>
inline bf16 from_float<bf16>(float v) { return emu::float_to_bf16_rn(v); }
template <>
inline fp16 from_float<fp16>(float v) { return emu::float_to_fp16_rn(v); }

// Atomics: blocks run one at a time on one OS thread, so a plain read-modify-write is exact.
template <typename T>
T atomic_add(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
T atomic_max(T* p, T v) {
  const T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <typename T>
T atomic_cas(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}

}  // namespace lf
