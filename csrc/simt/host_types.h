// The CUDA built-in types the emulated dialect needs on the host: launch geometry (dim3, uint3),
// 8/16-byte vector types (uint4, float4, ...) and the 16-bit float types with round-to-nearest-even
// conversions. In lf::emu so that a translation unit can never see two definitions of a CUDA name;
// dialect_host.h brings the CUDA spellings into the global namespace for kernel code.
#pragma once

#include <cstdint>
#include <cstring>

namespace lf::emu {

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

// Same sizes and alignments as CUDA's vector_types.h (16-byte types are 16-byte aligned).
struct alignas(8) int2 { int x, y; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) float4 { float x, y, z, w; };

// bf16: the high half of an fp32. Rounding to nearest even: add 0x7fff plus the lowest kept bit, then
// truncate; NaNs stay NaN (quieted) instead of rounding into infinity.
struct bf16 {
  uint16_t bits;
};

inline float bf16_to_float(bf16 h) {
  const uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline bf16 float_to_bf16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

// fp16 through the compiler's _Float16 (IEEE binary16; conversions round to nearest even, with
// subnormals), stored as bits so the type stays a trivial 2-byte struct like CUDA's __half.
struct fp16 {
  uint16_t bits;
};

inline float fp16_to_float(fp16 h) {
  _Float16 v;
  std::memcpy(&v, &h.bits, 2);
  return static_cast<float>(v);
}

inline fp16 float_to_fp16_rn(float f) {
  const _Float16 v = static_cast<_Float16>(f);
  fp16 h;
  std::memcpy(&h.bits, &v, 2);
  return h;
}

}  // namespace lf::emu
