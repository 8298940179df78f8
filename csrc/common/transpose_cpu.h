// fp32 matrix transposes on the CPU.
// - transpose_batched: batched, parallel over tiles, the variant the CPU supports: the NCDHW <->
//   channels-last frame conversions of causal_conv3d (ATen's strided copy runs them at about 2 GB/s,
//   the vector blocks at memory speed). transpose_cpu_kernel.cpp is compiled once per instruction set.
// - transpose (files compiled per instruction set only, where CPU_CAPABILITY is defined): one matrix,
//   out of place, 16 x 16 blocks in AVX-512 registers, 8 x 8 in AVX2 ones, scalar edges; used by the
//   attention kernels (Q^T, O^T) and by transpose_batched.
#pragma once

#include <cstdint>

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

namespace lavin_fast::cpu {

// For b in [0, batch): dst + b * dst_batch (cols x rows, row stride ldd) =
// transpose of src + b * src_batch (rows x cols, row stride lds).
struct TransposeParams {
  const float* src;
  float* dst;
  int64_t batch, rows, cols;
  int64_t lds, ldd, src_batch, dst_batch;
};

void transpose_batched(const TransposeParams& p);

// One table per instruction-set variant of transpose_cpu_kernel.cpp.
struct TransposeCpuKernels {
  void (*batched)(const TransposeParams&);
};

}  // namespace lavin_fast::cpu

#ifdef CPU_CAPABILITY
namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {

#if defined(CPU_CAPABILITY_AVX512)
constexpr int kTransposeBlock = 16;

// dst (16 x 16, row stride ldd) = src^T (16 x 16, row stride lds).
inline void transpose_block(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 r[16], u[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  // Per 128-bit lane: pairs of rows interleaved, then groups of four rows (u[4g + k] holds, in lane L,
  // column 4L + k of rows 4g..4g+3), then lanes gathered across the four groups.
  for (int i = 0; i < 16; i += 2) {
    u[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    u[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {
    const __m512d t0 = _mm512_castps_pd(u[g]), t1 = _mm512_castps_pd(u[g + 1]);
    const __m512d t2 = _mm512_castps_pd(u[g + 2]), t3 = _mm512_castps_pd(u[g + 3]);
    r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int k = 0; k < 4; ++k) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88), v1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
    const __m512 w0 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
    _mm512_storeu_ps(dst + k * ldd, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_storeu_ps(dst + (4 + k) * ldd, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_storeu_ps(dst + (8 + k) * ldd, _mm512_shuffle_f32x4(v0, w0, 0xDD));
    _mm512_storeu_ps(dst + (12 + k) * ldd, _mm512_shuffle_f32x4(v1, w1, 0xDD));
  }
}
#elif defined(CPU_CAPABILITY_AVX2)
constexpr int kTransposeBlock = 8;

// dst (8 x 8, row stride ldd) = src^T (8 x 8, row stride lds).
inline void transpose_block(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m256 r[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {  // per 128-bit lane: pairs of rows interleaved
    u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {  // groups of four rows: r[g + k] holds column 4L + k in lane L
    r[g] = _mm256_shuffle_ps(u[g], u[g + 2], 0x44);
    r[g + 1] = _mm256_shuffle_ps(u[g], u[g + 2], 0xEE);
    r[g + 2] = _mm256_shuffle_ps(u[g + 1], u[g + 3], 0x44);
    r[g + 3] = _mm256_shuffle_ps(u[g + 1], u[g + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {  // lanes gathered across the two groups
    _mm256_storeu_ps(dst + k * ldd, _mm256_permute2f128_ps(r[k], r[4 + k], 0x20));
    _mm256_storeu_ps(dst + (4 + k) * ldd, _mm256_permute2f128_ps(r[k], r[4 + k], 0x31));
  }
}
#else
constexpr int kTransposeBlock = 1;

inline void transpose_block(const float* src, int64_t, float* dst, int64_t) { *dst = *src; }
#endif

// dst (cols x rows, row stride ldd) = src^T for src (rows x cols, row stride lds); any sizes.
inline void transpose(const float* src, int64_t lds, int64_t rows, int64_t cols, float* dst, int64_t ldd) {
  constexpr int B = kTransposeBlock;
  const int64_t rows_b = rows - rows % B, cols_b = cols - cols % B;
  for (int64_t r0 = 0; r0 < rows_b; r0 += B) {
    for (int64_t c0 = 0; c0 < cols_b; c0 += B) transpose_block(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd);
    for (int64_t r = r0; r < r0 + B; ++r)
      for (int64_t c = cols_b; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
  }
  for (int64_t r = rows_b; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace CPU_CAPABILITY
}  // namespace lavin_fast::cpu
#endif  // CPU_CAPABILITY
