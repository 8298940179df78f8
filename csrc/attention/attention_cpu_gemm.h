// Register-blocked fp32 GEMM micro-kernels for the CPU attention tiles (per-ISA header: include only
// from *_cpu_kernel.cpp files, which are compiled once per instruction set).
//
// C (M x N) = / += A (M x K, row stride lda) * B (K x N, row stride ldb), N a multiple of the vector
// width; or with A transposed (kTransA: A stored K x M), which the attention kernels use for O^T +=
// V^T P^T, dV^T += dO^T P and dK^T += Q^T dS without materialising the transposes. Each block keeps MR x NV
// vector accumulators in registers and reads one row of B (NV vectors) plus MR broadcasts of A per
// step of K: on AVX-512, 6 x 4 zmm accumulators give 24 FMAs per 4 loads and 6 broadcasts, which keeps
// both FMA pipes busy (>= 10 independent chains hide their latency) while the B panel stays in L1.
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
                       int64_t ldc, const float* cscale) {
  // Loops over the register block unrolled by pragma so the accumulators are scalarised before
  // register allocation (otherwise GCC copies all of them through the stack after the K loop).
  fVec acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      acc[r][v] = kAccumulate ? fVec::loadu(C + r * ldc + v * kVec) : fVec(0.f);
  if (kAccumulate && cscale)  // C *= cscale (per column) before accumulating: the online softmax's rescale
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const fVec s = fVec::loadu(cscale + v * kVec);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r][v] = acc[r][v] * s;
    }
  for (int k = 0; k < K; ++k) {
    fVec b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = fVec::loadu(B + k * ldb + v * kVec);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const fVec a(kTransA ? A[k * lda + r] : A[r * lda + k]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = at::vec::fmadd(a, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v].store(C + r * ldc + v * kVec);
}

// Rows of one column panel: full MR-row blocks, then one block of the remaining rows.
template <int NV, bool kAcc, bool kTA, int R>
inline void gemm_row_tail(int rows, int K, const float* A, int64_t lda, const float* B, int64_t ldb,
                          float* C, int64_t ldc, const float* cs) {
  if constexpr (R > 0) {
    if (rows == R) return gemm_block<R, NV, kAcc, kTA>(K, A, lda, B, ldb, C, ldc, cs);
    gemm_row_tail<NV, kAcc, kTA, R - 1>(rows, K, A, lda, B, ldb, C, ldc, cs);
  }
}

template <int NV, bool kAcc, bool kTA, int MR = kGemmMR>
inline void gemm_panel(int M, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                       int64_t ldc, const float* cs) {
  int m = 0;
  for (; m + MR <= M; m += MR)
    gemm_block<MR, NV, kAcc, kTA>(K, A + (kTA ? m : m * lda), lda, B, ldb, C + m * ldc, ldc, cs);
  if (m < M)
    gemm_row_tail<NV, kAcc, kTA, MR - 1>(M - m, K, A + (kTA ? m : m * lda), lda, B, ldb, C + m * ldc, ldc, cs);
}

template <bool kAcc, bool kTA, int NV = kGemmNV - 1>
inline void gemm_col_tail(int nv, int M, int K, const float* A, int64_t lda, const float* B,
                          int64_t ldb, float* C, int64_t ldc, const float* cs) {
  if constexpr (NV > 0) {
    if (nv == NV) return gemm_panel<NV, kAcc, kTA>(M, K, A, lda, B, ldb, C, ldc, cs);
    gemm_col_tail<kAcc, kTA, NV - 1>(nv, M, K, A, lda, B, ldb, C, ldc, cs);
  }
}

// C = A * B (kAccumulate false) or C += A * B, A (M x K) or, with kTransA, A^T with A (K x M);
// N % kVec == 0. K == 0 leaves C (or zeroes it). With kAccumulate and cscale (N,), C = C * cscale + A * B
// (each column scaled).
template <bool kAccumulate, bool kTransA = false>
inline void gemm(int M, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                 int64_t ldc, const float* cscale = nullptr) {
  const int nvec = N / kVec;
#if defined(CPU_CAPABILITY_AVX512)
  // Five vectors (head_dim 72 or 80 padded to 80): one 4 x 5 panel (20 accumulators) instead of a
  // 6 x 4 panel plus a 6 x 1 tail panel whose 6 accumulators cannot hide the FMA latency.
  if (nvec == 5) return gemm_panel<5, kAccumulate, kTransA, 4>(M, K, A, lda, B, ldb, C, ldc, cscale);
#endif
  int v = 0;
  for (; v + kGemmNV <= nvec; v += kGemmNV)
    gemm_panel<kGemmNV, kAccumulate, kTransA>(M, K, A, lda, B + v * kVec, ldb, C + v * kVec, ldc,
                                              cscale ? cscale + v * kVec : nullptr);
  if (v < nvec)
    gemm_col_tail<kAccumulate, kTransA>(nvec - v, M, K, A, lda, B + v * kVec, ldb, C + v * kVec, ldc,
                                        cscale ? cscale + v * kVec : nullptr);
}

}  // namespace CPU_CAPABILITY
}  // namespace lavin_fast::cpu
