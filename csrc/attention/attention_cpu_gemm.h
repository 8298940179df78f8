// Register-blocked fp32 GEMM micro-kernels for the CPU attention tiles (per-ISA header: include only
// from *_cpu_kernel.cpp files, which are compiled once per instruction set).
//
// C (M x N) = / += A (M x K, row stride lda) * B (K x N, row stride ldb), N a multiple of the vector
// width; or with A transposed (gemm_tn: A stored K x M), which the backward uses for P^T dO and
// dS^T Q without materialising the transposes. Each block keeps MR x NV vector accumulators in registers and reads one row of B (NV vectors)
// plus MR broadcasts of A per step of K: on AVX-512, 6 x 4 zmm accumulators give 24 FMAs per 4 loads
// and 6 broadcasts, which keeps the FMA units busy while the B panel (K x 64 floats) stays in L1.
#pragma once

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <cstdint>

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {

using fVec = at::vec::Vectorized<float>;
constexpr int kVec = fVec::size();

#if defined(CPU_CAPABILITY_AVX512)
constexpr int kGemmMR = 6, kGemmNV = 4;  // 24 of 32 zmm registers accumulate
#elif defined(CPU_CAPABILITY_AVX2)
constexpr int kGemmMR = 6, kGemmNV = 2;  // 12 of 16 ymm registers accumulate
#else
constexpr int kGemmMR = 4, kGemmNV = 1;
#endif

template <int MR, int NV, bool kAccumulate, bool kTransA>
inline void gemm_block(int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                       int64_t ldc) {
  fVec acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v)
      acc[r][v] = kAccumulate ? fVec::loadu(C + r * ldc + v * kVec) : fVec(0.f);
  for (int k = 0; k < K; ++k) {
    fVec b[NV];
    for (int v = 0; v < NV; ++v) b[v] = fVec::loadu(B + k * ldb + v * kVec);
    for (int r = 0; r < MR; ++r) {
      const fVec a(kTransA ? A[k * lda + r] : A[r * lda + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = at::vec::fmadd(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v].store(C + r * ldc + v * kVec);
}

// Rows of one column panel: full MR-row blocks, then one block of the remaining rows.
template <int NV, bool kAcc, bool kTA, int R = kGemmMR - 1>
inline void gemm_row_tail(int rows, int K, const float* A, int64_t lda, const float* B, int64_t ldb,
                          float* C, int64_t ldc) {
  if constexpr (R > 0) {
    if (rows == R) return gemm_block<R, NV, kAcc, kTA>(K, A, lda, B, ldb, C, ldc);
    gemm_row_tail<NV, kAcc, kTA, R - 1>(rows, K, A, lda, B, ldb, C, ldc);
  }
}

template <int NV, bool kAcc, bool kTA>
inline void gemm_panel(int M, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                       int64_t ldc) {
  int m = 0;
  for (; m + kGemmMR <= M; m += kGemmMR)
    gemm_block<kGemmMR, NV, kAcc, kTA>(K, A + (kTA ? m : m * lda), lda, B, ldb, C + m * ldc, ldc);
  if (m < M) gemm_row_tail<NV, kAcc, kTA>(M - m, K, A + (kTA ? m : m * lda), lda, B, ldb, C + m * ldc, ldc);
}

template <bool kAcc, bool kTA, int NV = kGemmNV - 1>
inline void gemm_col_tail(int nv, int M, int K, const float* A, int64_t lda, const float* B,
                          int64_t ldb, float* C, int64_t ldc) {
  if constexpr (NV > 0) {
    if (nv == NV) return gemm_panel<NV, kAcc, kTA>(M, K, A, lda, B, ldb, C, ldc);
    gemm_col_tail<kAcc, kTA, NV - 1>(nv, M, K, A, lda, B, ldb, C, ldc);
  }
}

// C = A * B (kAccumulate false) or C += A * B, A (M x K) or, with kTransA, A^T with A (K x M);
// N % kVec == 0. K == 0 leaves C (or zeroes it).
template <bool kAccumulate, bool kTransA = false>
inline void gemm(int M, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc) {
  const int nvec = N / kVec;
  int v = 0;
  for (; v + kGemmNV <= nvec; v += kGemmNV)
    gemm_panel<kGemmNV, kAccumulate, kTransA>(M, K, A, lda, B + v * kVec, ldb, C + v * kVec, ldc);
  if (v < nvec)
    gemm_col_tail<kAccumulate, kTransA>(nvec - v, M, K, A, lda, B + v * kVec, ldb, C + v * kVec, ldc);
}

}  // namespace CPU_CAPABILITY
}  // namespace lavin_fast::cpu
