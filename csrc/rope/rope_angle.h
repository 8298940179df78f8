// The rotation angle of a position, reduced to about [-pi, pi]: shared by the CPU kernels and the
// portable device code (rope_kernel.cuh), plain C++ that nvcc also compiles for the GPU.
//
// angle = double(pos) * inv_freq is the float64 reference's own product (pos is an int32, exact in
// double), so it is right to a relative 2^-53 for every int32 position. fp32 math cannot do this:
// float(pos) is inexact from 2^24 on, and an fp32 angle of 2^28 has an ulp of 32 rad. Its reduction
// modulo 2 pi is done in double with FMAs (Cody-Waite, 2 pi as hi + lo; error ~1e-15 rad), so the fp32
// sin/cos that follow only see arguments in [-pi, pi], where they are accurate. Per (row, pair) this
// is a few double multiplies and FMAs, no double transcendental, shared by all heads of the row.
#pragma once

#include <math.h>

#include <cstdint>

#if defined(__CUDACC__)
#define LF_ROPE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LF_ROPE_HOST_DEVICE inline
#endif

namespace lavin_fast::rope_angle {

constexpr double kPi = 3.141592653589793;              // nearest double to pi
constexpr double kInvPi = 0.3183098861837907;
constexpr double kTwoPiHi = 6.283185307179586;         // nearest double to 2 pi
constexpr double kTwoPiLo = 2.4492935982947064e-16;    // 2 pi - kTwoPiHi
constexpr double kInvTwoPi = 0.15915494309189535;

// pos * inv_freq - 2 pi n for the nearest integer n: within ~1e-15 of [-pi, pi].
LF_ROPE_HOST_DEVICE double reduced_angle(int32_t pos, double inv_freq) {
  const double a = static_cast<double>(pos) * inv_freq;
  const double n = rint(a * kInvTwoPi);
  // Explicit FMAs: each step rounds once, and the compiler has no product left to contract.
  return fma(-n, kTwoPiLo, fma(-n, kTwoPiHi, a));
}

}  // namespace lavin_fast::rope_angle
