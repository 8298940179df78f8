// Host-side bf16 / fp16 bit conversions for the SIMT emulator and its tests: exact widening to float
// and round-to-nearest-even narrowing (what __float2bfloat16_rn / __float2half_rn do), in plain
// integer arithmetic so the result never depends on the FPU's rounding mode. NaNs stay NaN (quiet, sign
// kept), overflow rounds to infinity, fp16 subnormals are produced and read exactly.
#pragma once

#include <bit>
#include <cstdint>

namespace lf::emu {

// Which 16-bit float format a register half holds (the .bf16 / .f16 of an mma).
enum class HalfKind { bf16, fp16 };

// bf16 is the top half of a float: widening is a shift.
inline float bf16_bits_to_float(uint16_t h) { return std::bit_cast<float>(uint32_t{h} << 16); }

inline uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  // Adding 0x7fff plus the kept LSB rounds ties to even; a carry into the exponent is the right result
  // (up to infinity).
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float fp16_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // Inf / NaN
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
  // Subnormal (or zero): mant * 2^-24, exact in float.
  const float mag = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -mag : mag;
}

inline uint16_t float_to_fp16_bits(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // quiet NaN
  // 65520 (0x477ff000) is the midpoint between 65504 (the largest fp16, odd mantissa) and 2^16: it
  // and everything above round to infinity.
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  // Rounds the integer `m` shifted right by `s` bits to nearest, ties to even.
  const auto round_shift = [](uint32_t m, uint32_t s) {
    const uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
    return q + ((rem > half || (rem == half && (q & 1u))) ? 1u : 0u);
  };
  if (a >= 0x38800000u) {  // >= 2^-14: normal fp16; rebias the exponent, round away 13 mantissa bits
    // A carry out of the mantissa correctly bumps the exponent.
    return static_cast<uint16_t>(sign | (round_shift(a, 13) - (112u << 10)));
  }
  // Subnormal fp16: the result is round(|f| * 2^24) units of 2^-24 (1024 units = the smallest
  // normal, which the same encoding expresses). |f| = m * 2^(e - 150) with the implicit bit in m.
  const uint32_t e = a >> 23;
  const uint32_t m = e ? ((a & 0x7fffffu) | 0x800000u) : a;
  const uint32_t s = 126 - (e ? e : 1);  // >= 14 here
  if (s >= 25) return sign;  // below 2^-25: m * 2^-s < 1/2 unit
  return static_cast<uint16_t>(sign | round_shift(m, s));
}

template <HalfKind K>
float half_bits_to_float(uint16_t h) {
  return K == HalfKind::bf16 ? bf16_bits_to_float(h) : fp16_bits_to_float(h);
}

template <HalfKind K>
uint16_t float_to_half_bits(float f) {
  return K == HalfKind::bf16 ? float_to_bf16_bits(f) : float_to_fp16_bits(f);
}

}  // namespace lf::emu
