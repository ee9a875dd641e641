// Small AVX2 register helpers shared by the hand-written kernels (gemm_avx2, attention_head).
// Include only from x86 translation units; every function carries the avx2,fma target attribute,
// so callers must themselves be AVX2 + FMA code reached after detail::cpu_has_avx2_fma().
#pragma once
#include <immintrin.h>

#include "kernels/simd.hpp"

namespace vit::kernels::avx2 {

// r[0..8) rows of an 8 x 8 block in, its columns out: r[k] lane c <- r[c] lane k.
VIT_AVX2_FMA inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Sum of the 8 lanes in a fixed order: ((0+4) + (2+6)) + ((1+5) + (3+7)).
VIT_AVX2_FMA inline float hsum(__m256 v) {
  const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 b = _mm_add_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_add_ss(b, _mm_shuffle_ps(b, b, 1)));
}

// Largest lane (exact, so the order does not matter; a NaN lane may or may not win).
VIT_AVX2_FMA inline float hmax(__m256 v) {
  const __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 b = _mm_max_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_max_ss(b, _mm_shuffle_ps(b, b, 1)));
}

// kernels::fast_exp of U vectors in place, for x <= 86 (the softmax's shifted scores are <= 0):
// x < -86 gives 0 (true value < 4.5e-38, -inf included), NaN stays NaN. The same operations as
// fast_exp compiled with FMA contraction, so the same bits (within 1 ulp of exp). The steps are
// interleaved across the U vectors: one exp is a chain of ~15 dependent operations, and a loop of
// single exps runs at the chain's latency rather than at the FMA pipes' throughput.
template <int U>
VIT_AVX2_FMA inline void exp_interleaved(__m256* x) {
  const __m256 lo = _mm256_set1_ps(-86.0f), round = _mm256_set1_ps(12582912.0f);
  __m256 xc[U], n[U], r[U], p[U];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) {
    xc[u] = _mm256_max_ps(lo, x[u]);
    n[u] = _mm256_sub_ps(_mm256_fmadd_ps(xc[u], _mm256_set1_ps(1.44269504088896341f), round), round);
    r[u] = _mm256_fnmadd_ps(n[u], _mm256_set1_ps(0.693145751953125f), xc[u]);
    r[u] = _mm256_fnmadd_ps(n[u], _mm256_set1_ps(1.428606765330187045e-06f), r[u]);
    p[u] = _mm256_set1_ps(1.0f / 5040.0f);
  }
  const float c[] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
#pragma GCC unroll 7
  for (int k = 0; k < 7; ++k)
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) p[u] = _mm256_fmadd_ps(p[u], r[u], _mm256_set1_ps(c[k]));
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u) {
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n[u]), 23);
    const __m256 y = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p[u]), e));
    x[u] = _mm256_andnot_ps(_mm256_cmp_ps(x[u], lo, _CMP_LT_OQ), y);
  }
}

// One vector of exp_interleaved.
VIT_AVX2_FMA inline __m256 exp(__m256 x) {
  exp_interleaved<1>(&x);
  return x;
}

}  // namespace vit::kernels::avx2
