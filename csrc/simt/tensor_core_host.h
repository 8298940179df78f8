// Host semantics of the warp-wide tensor-core instructions, as pure functions of all 32 lanes'
// operands (no fibers: the emulator gathers the lanes with its warp collective and calls these; the
// tests call them directly). Layouts are PTX's, restated in docs/spec/simt_emulation.md. A
// 32-bit register holds two 16-bit values, the lower index in the low half.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "simt/emu_error.h"
#include "simt/half_host.h"

namespace lf::emu {

inline uint16_t low_half(uint32_t r) { return static_cast<uint16_t>(r & 0xffffu); }
inline uint16_t high_half(uint32_t r) { return static_cast<uint16_t>(r >> 16); }
inline uint32_t pack_halves(uint16_t low, uint16_t high) { return uint32_t{low} | (uint32_t{high} << 16); }

// mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32: D = A (16x16) * B (16x8) + C, per
// lane g = lane >> 2, t = lane % 4:
//   A: a0 = (g, 2t..2t+1), a1 = (g+8, 2t..2t+1), a2 = (g, 2t+8..2t+9), a3 = (g+8, 2t+8..2t+9)
//   B: b0 = rows 2t, 2t+1 of column g;  b1 = rows 2t+8, 2t+9 of column g
//   C, D: c0, c1 = (g, 2t), (g, 2t+1);  c2, c3 = (g+8, 2t), (g+8, 2t+1)
// Tensor cores round the sum in their own (undocumented) way; we take the exact products (a product of
// two bf16 or two fp16 values fits a float's mantissa, so fused or not gives the same bits) and add
// them to c in k order, rounding to fp32 each step. Tests compare against float64 with a tolerance.
// `d` may be `c`.
template <HalfKind K>
void mma_m16n8k16_warp(const uint32_t a[32][4], const uint32_t b[32][2], const float c[32][4],
                       float d[32][4]) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane % 4;
    for (int r = 0; r < 4; ++r) {
      const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
      A[row][col] = half_bits_to_float<K>(low_half(a[lane][r]));
      A[row][col + 1] = half_bits_to_float<K>(high_half(a[lane][r]));
    }
    for (int r = 0; r < 2; ++r) {
      B[2 * t + 8 * r][g] = half_bits_to_float<K>(low_half(b[lane][r]));
      B[2 * t + 8 * r + 1][g] = half_bits_to_float<K>(high_half(b[lane][r]));
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane % 4;
    for (int r = 0; r < 4; ++r) {
      const int row = g + 8 * (r >> 1), col = 2 * t + (r & 1);
      float acc = c[lane][r];
      for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];
      d[lane][r] = acc;
    }
  }
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: `num` 8x8 matrices of 16-bit values; lanes
// 8i..8i+7 give the addresses of matrix i's rows (16 bytes each, 16-byte aligned; the addresses of
// lanes >= 8 * num are ignored). Matrix i lands in register i of every lane: without .trans, lane l
// gets row l >> 2, columns 2(l%4) (low half) and 2(l%4)+1 (high); with .trans, rows 2(l%4) (low) and
// 2(l%4)+1 (high) of column l >> 2. Registers >= num are left as they are.
inline void ldmatrix_warp(int num, bool trans, const void* const row_addr[32], uint32_t out[32][4]) {
  if (num != 1 && num != 2 && num != 4)
    throw DialectError("ldmatrix: .num must be x1, x2 or x4, got " + std::to_string(num));
  for (int i = 0; i < num; ++i) {
    uint16_t m[8][8];
    for (int row = 0; row < 8; ++row) {
      const void* p = row_addr[8 * i + row];
      if (p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 != 0)
        throw DialectError("ldmatrix: row address of lane " + std::to_string(8 * i + row) +
                           (p ? " is not 16-byte aligned" : " is null"));
      std::memcpy(m[row], p, sizeof m[row]);
    }
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane >> 2, t = lane % 4;
      out[lane][i] = trans ? pack_halves(m[2 * t][g], m[2 * t + 1][g])
                           : pack_halves(m[g][2 * t], m[g][2 * t + 1]);
    }
  }
}

}  // namespace lf::emu
