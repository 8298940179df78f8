// Vectorised loads and stores of fp32 / bf16 / fp16 rows as fp32 vectors (ATen's Vectorized), for CPU
// kernels compiled once per instruction set (see setup.py: DEFAULT, AVX2, AVX512). Everything here
// lives in the CPU_CAPABILITY namespace so the variants never collide at link time.
#pragma once

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <type_traits>

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {

using fVec = at::vec::Vectorized<float>;

// A "chunk" is two fp32 vectors: the width of one Vectorized<bf16/fp16> register, so that reduced
// types convert with one instruction pair. Tails load with zero fill and store partially.
using FullChunk = std::true_type;
using TailChunk = std::false_type;

template <typename T>
struct Chunk {
  static constexpr int64_t kWidth = 2 * fVec::size();

  // Tag-dispatched forms used inside for_each_chunk bodies: the full-chunk case compiles to
  // unmasked loads and stores, the tail case to masked ones.
  static inline void load(const T* p, int64_t, FullChunk, fVec& a, fVec& b) { load(p, a, b); }
  static inline void load(const T* p, int64_t n, TailChunk, fVec& a, fVec& b) { load(p, n, a, b); }
  static inline void store(T* p, int64_t, FullChunk, const fVec& a, const fVec& b) { store(p, a, b); }
  static inline void store(T* p, int64_t n, TailChunk, const fVec& a, const fVec& b) {
    store(p, n, a, b);
  }

  static inline void load(const T* p, fVec& a, fVec& b) {
    if constexpr (std::is_same_v<T, float>) {
      a = fVec::loadu(p);
      b = fVec::loadu(p + fVec::size());
    } else {
      std::tie(a, b) = at::vec::convert_to_float<T>(at::vec::Vectorized<T>::loadu(p));
    }
  }
  static inline void load(const T* p, int64_t n, fVec& a, fVec& b) {
    if constexpr (std::is_same_v<T, float>) {
      const int64_t na = std::min<int64_t>(n, fVec::size());
      a = fVec::loadu(p, na);
      b = n > fVec::size() ? fVec::loadu(p + fVec::size(), n - fVec::size()) : fVec(0.f);
    } else {
      std::tie(a, b) = at::vec::convert_to_float<T>(at::vec::Vectorized<T>::loadu(p, n));
    }
  }
  static inline void store(T* p, const fVec& a, const fVec& b) {
    if constexpr (std::is_same_v<T, float>) {
      a.store(p);
      b.store(p + fVec::size());
    } else {
      at::vec::convert_from_float<T>(a, b).store(p);
    }
  }
  // Non-temporal store of a full chunk to a kStreamAlign-aligned address: the line goes to memory
  // without first being read into cache (no read-for-ownership), which saves a third of the traffic
  // of writing an output far larger than the caches. Callers fence with stream_fence().
  static inline void stream(T* p, const fVec& a, const fVec& b) {
#if defined(CPU_CAPABILITY_AVX512)
    if constexpr (std::is_same_v<T, float>) {
      _mm512_stream_ps(p, a);
      _mm512_stream_ps(p + fVec::size(), b);
    } else {
      _mm512_stream_si512(reinterpret_cast<__m512i*>(p), at::vec::convert_from_float<T>(a, b));
    }
#elif defined(CPU_CAPABILITY_AVX2)
    if constexpr (std::is_same_v<T, float>) {
      _mm256_stream_ps(p, a);
      _mm256_stream_ps(p + fVec::size(), b);
    } else {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(p), at::vec::convert_from_float<T>(a, b));
    }
#else
    store(p, a, b);
#endif
  }
  static inline void store(T* p, int64_t n, const fVec& a, const fVec& b) {
    if constexpr (std::is_same_v<T, float>) {
      a.store(p, std::min<int64_t>(n, fVec::size()));
      if (n > fVec::size()) b.store(p + fVec::size(), n - fVec::size());
    } else {
      at::vec::convert_from_float<T>(a, b).store(p, n);
    }
  }
};

// Row starts must be aligned this much for Chunk::stream (every full chunk is then aligned too: chunks
// are 32, 64 or 128 bytes and the widest stream instruction needs 64).
constexpr uintptr_t kStreamAlign = 64;
// Outputs at least this large are written with streaming stores: they cannot stay in cache anyway.
constexpr int64_t kStreamMinBytes = int64_t{8} << 20;

inline void stream_fence() {
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
  _mm_sfence();
#endif
}

// Applies f(j, n, tag) to consecutive chunks of a row of length d: full chunks (n == kWidth, tag
// FullChunk), then at most one tail chunk (0 < n < kWidth, tag TailChunk). Keeping the split in one
// place keeps every kernel tail-correct.
template <typename F>
inline void for_each_chunk(int64_t d, F&& f) {
  constexpr int64_t W = Chunk<float>::kWidth;
  int64_t j = 0;
  for (; j + W <= d; j += W) f(j, W, FullChunk{});
  if (j < d) f(j, d - j, TailChunk{});
}

}  // namespace CPU_CAPABILITY
}  // namespace lavin_fast::cpu
