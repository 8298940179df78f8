// exp2 for the softmax of the CPU attention kernels (per-ISA header, like attention_cpu_gemm.h).
//
// The softmax needs 2^x with x <= ~0: n = round(x), 2^(x - n) by a degree-5 polynomial on [-0.5, 0.5]
// (max relative error 1.6e-7 evaluated in fp32 with FMAs, about 1.3 ulp; fitted for relative error
// with the constant term fixed at 1, so 2^0 is exactly 1: the top key of a one-hot softmax row gets
// P = 1 and the row's output is that key's V exactly, as in PyTorch's softmax), times 2^n (AVX-512:
// scalef; AVX2: built in the exponent bits). About 9 instructions a vector against ~20 for ATen's exp_u20 (the forward's softmax was ~8%
// of its time). Inputs are clamped from below (AVX-512: -160; AVX2: [-127, 127]): masked scores (-inf)
// give exactly 0, so masked and unseen entries contribute exact zeros; NaN stays NaN.
#pragma once

#include <ATen/cpu/vec/vec.h>

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {

namespace exp2_poly {
constexpr float c0 = 1.0f, c1 = 0.6931470036506653f, c2 = 0.24022242426872253f,
                c3 = 0.05550733581185341f, c4 = 0.009671512991189957f, c5 = 0.0013264723820611835f;
}

// 2^f for f in [-0.5, 0.5]: the polynomial by Horner's rule (at::vec::fmadd is one FMA per vector).
inline at::vec::Vectorized<float> exp2_reduced(const at::vec::Vectorized<float>& f) {
  using V = at::vec::Vectorized<float>;
  using namespace exp2_poly;
  V p = at::vec::fmadd(V(c5), f, V(c4));
  p = at::vec::fmadd(p, f, V(c3));
  p = at::vec::fmadd(p, f, V(c2));
  p = at::vec::fmadd(p, f, V(c1));
  return at::vec::fmadd(p, f, V(c0));
}

inline at::vec::Vectorized<float> fast_exp2(const at::vec::Vectorized<float>& x) {
#if defined(CPU_CAPABILITY_AVX512)
  // scalef applies 2^n in one instruction; n = -160 makes the product round to exactly 0.
  // max/min return their second operand when either is NaN: x second, so NaN stays NaN.
  const __m512 t = _mm512_max_ps(_mm512_set1_ps(-160.f), x);
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 p = exp2_reduced(_mm512_sub_ps(t, n));
  return _mm512_scalef_ps(p, n);
#elif defined(CPU_CAPABILITY_AVX2)
  const __m256 t = _mm256_min_ps(_mm256_set1_ps(127.f), _mm256_max_ps(_mm256_set1_ps(-127.f), x));
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 p = exp2_reduced(_mm256_sub_ps(t, n));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
#else
  return x.exp2();
#endif
}

}  // namespace CPU_CAPABILITY
}  // namespace lavin_fast::cpu
