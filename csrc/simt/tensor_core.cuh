// The dialect's tensor-core operations: warp-wide mma.m16n8k16 (bf16 or fp16 in, fp32 accumulate) and
// ldmatrix. Under nvcc, inline PTX (sm_80+); under the host SIMT emulator, the warp's lanes meet in the
// emulator's warp collective and the pure functions of tensor_core_host.h compute every lane's result.
//
// Fragment layouts (PTX's; restated in tensor_core_host.h and docs/spec/simt_emulation.md):
//   lf::ldmatrix_x4(a, &tile[lane % 16][8 * (lane / 16)]) on a row-major 16x16 A tile gives the A
//   fragment; B (16x8) comes from ldmatrix_x2 of an N x K tile (K contiguous, lane l at
//   &bt[l % 8][8 * (l / 8)]) or ldmatrix_x2_trans of a row-major K x N tile (lane l at &b[l][0]).
// Every lane of the warp calls these (all are .sync.aligned: full warp, converged, no divergence).
#pragma once

#include <cstdint>
#include <type_traits>

#include "simt/dialect.cuh"

#if defined(__CUDACC__)

#include "simt/ptx_address.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "simt/tensor_core.cuh: mma.m16n8k16 with bf16 / fp16 inputs needs sm_80 or newer"
#endif

namespace lf {

// mma.sync.aligned.m16n8k16.row.col.f32.<In>.<In>.f32: d = a * b + c (d may be c). In: lf::bf16 or
// lf::fp16. `asm volatile` keeps the compiler from sinking the warp-synchronous instruction into a
// branch where only some lanes would run it.
template <typename In>
LF_DEVICE void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                            const float (&c)[4]) {
  static_assert(std::is_same_v<In, bf16> || std::is_same_v<In, fp16>, "mma_m16n8k16: In is bf16 or fp16");
#define LF_MMA_M16N8K16_(type)                                                                   \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." type "." type ".f32 "                    \
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"           \
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                  \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]),    \
                 "f"(c[1]), "f"(c[2]), "f"(c[3]))
  if constexpr (std::is_same_v<In, bf16>)
    LF_MMA_M16N8K16_("bf16");
  else
    LF_MMA_M16N8K16_("f16");
#undef LF_MMA_M16N8K16_
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: lanes 8i..8i+7 pass the addresses of matrix
// i's 8 rows (16 bytes each, 16-byte aligned, in shared memory); matrix i lands in r[i]. Lanes past
// 8 * N still call, their address is ignored. The "memory" clobber: the asm reads shared memory that
// plain C++ stores wrote, so those stores must not move past it.
LF_DEVICE void ldmatrix_x1(uint32_t (&r)[1], const void* smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0]) : "r"(detail::smem_u32(smem_row_ptr)) : "memory");
}
LF_DEVICE void ldmatrix_x2(uint32_t (&r)[2], const void* smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(detail::smem_u32(smem_row_ptr)) : "memory");
}
LF_DEVICE void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(detail::smem_u32(smem_row_ptr)) : "memory");
}
LF_DEVICE void ldmatrix_x1_trans(uint32_t (&r)[1], const void* smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0]) : "r"(detail::smem_u32(smem_row_ptr)) : "memory");
}
LF_DEVICE void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1]) : "r"(detail::smem_u32(smem_row_ptr)) : "memory");
}
LF_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(detail::smem_u32(smem_row_ptr)) : "memory");
}

}  // namespace lf

#elif defined(LF_SIMT_EMULATOR)

// The warp's lanes meet in the emulator's warp collective (simt/collectives.h): once all 32 have
// arrived, the pure functions of tensor_core_host.h compute every lane's registers from every lane's.
#include "simt/tensor_core_host.h"

namespace lf {

template <typename In>
LF_DEVICE void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                            const float (&c)[4]) {
  static_assert(std::is_same_v<In, bf16> || std::is_same_v<In, fp16>, "mma_m16n8k16: In is bf16 or fp16");
  constexpr emu::HalfKind kind = std::is_same_v<In, bf16> ? emu::HalfKind::bf16 : emu::HalfKind::fp16;
  struct Operands {
    uint32_t a[4], b[2];
    float c[4];
  };
  struct Result {
    float d[4];
  };
  const Operands mine = {{a[0], a[1], a[2], a[3]}, {b[0], b[1]}, {c[0], c[1], c[2], c[3]}};
  const Result r = emu::warp_collective<Operands, Result>(
      kFullMask, mine, [](const Operands* in, unsigned, Result* out) {
        uint32_t fa[32][4], fb[32][2];
        float fc[32][4], fd[32][4];
        for (int l = 0; l < 32; ++l) {
          for (int i = 0; i < 4; ++i) fa[l][i] = in[l].a[i], fc[l][i] = in[l].c[i];
          for (int i = 0; i < 2; ++i) fb[l][i] = in[l].b[i];
        }
        emu::mma_m16n8k16_warp<kind>(fa, fb, fc, fd);
        for (int l = 0; l < 32; ++l)
          for (int i = 0; i < 4; ++i) out[l].d[i] = fd[l][i];
      });
  for (int i = 0; i < 4; ++i) d[i] = r.d[i];
}

namespace detail {
template <int N, bool Trans>
LF_DEVICE void ldmatrix(uint32_t (&r)[N], const void* smem_row_ptr) {
  struct Result {
    uint32_t r[4];
  };
  const Result res = emu::warp_collective<const void*, Result>(
      kFullMask, smem_row_ptr, [](const void* const* in, unsigned, Result* out) {
        const void* rows[32];
        for (int l = 0; l < 32; ++l) rows[l] = in[l];
        uint32_t regs[32][4];
        emu::ldmatrix_warp(N, Trans, rows, regs);
        for (int l = 0; l < 32; ++l)
          for (int i = 0; i < N; ++i) out[l].r[i] = regs[l][i];
      });
  for (int i = 0; i < N; ++i) r[i] = res.r[i];
}
}  // namespace detail

LF_DEVICE void ldmatrix_x1(uint32_t (&r)[1], const void* p) { detail::ldmatrix<1, false>(r, p); }
LF_DEVICE void ldmatrix_x2(uint32_t (&r)[2], const void* p) { detail::ldmatrix<2, false>(r, p); }
LF_DEVICE void ldmatrix_x4(uint32_t (&r)[4], const void* p) { detail::ldmatrix<4, false>(r, p); }
LF_DEVICE void ldmatrix_x1_trans(uint32_t (&r)[1], const void* p) { detail::ldmatrix<1, true>(r, p); }
LF_DEVICE void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p) { detail::ldmatrix<2, true>(r, p); }
LF_DEVICE void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { detail::ldmatrix<4, true>(r, p); }

}  // namespace lf

#else
#error "simt/tensor_core.cuh: needs nvcc or the host SIMT emulator (LF_SIMT_EMULATOR)"
#endif
