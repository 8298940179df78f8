// exp2 for the softmax of the CPU attention kernels (per-ISA header, like attention_cpu_gemm.h).
//
// The kernels fold log2(e) into the score scale, so the softmax needs 2^x with x <= ~0: n = round(x),
// 2^(x - n) by a degree-5 polynomial on [-0.5, 0.5] (max relative error 2.4e-7 evaluated in fp32,
// about 2 ulp; fitted for relative error), and 2^n put straight into the exponent bits. About 10
// instructions a vector against ~20 for ATen's exp_u20, which matters because the softmax is a
// quarter of the forward's instructions. Inputs are clamped to [-127, 127]: x <= -127 (masked scores
// are -inf) gives exactly 0, so masked and unseen entries contribute exact zeros.
#pragma once

#include <ATen/cpu/vec/vec.h>

namespace lavin_fast::cpu {
inline namespace CPU_CAPABILITY {

namespace exp2_poly {
constexpr float c0 = 1.0000001192092896f, c1 = 0.6931469440460205f, c2 = 0.24022120237350464f,
                c3 = 0.05550713464617729f, c4 = 0.009675540961325169f, c5 = 0.00132764654699713f;
}

inline at::vec::Vectorized<float> fast_exp2(const at::vec::Vectorized<float>& x) {
  using namespace exp2_poly;
#if defined(CPU_CAPABILITY_AVX512)
  __m512 t = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-127.f)), _mm512_set1_ps(127.f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(c5), f, _mm512_set1_ps(c4));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c3));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c2));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c1));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(c0));
  // 2^n as a float: biased exponent n + 127 in bits 23..30 (n = -127 gives +0.0).
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
#elif defined(CPU_CAPABILITY_AVX2)
  __m256 t = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-127.f)), _mm256_set1_ps(127.f));
  const __m256 n = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(t, n);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(c5), f, _mm256_set1_ps(c4));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c3));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c2));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c1));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(c0));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
#else
  return x.exp2();
#endif
}

}  // namespace CPU_CAPABILITY
}  // namespace lavin_fast::cpu
