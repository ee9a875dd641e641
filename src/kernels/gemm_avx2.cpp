// The AVX2/FMA 6x16 GEMM micro-kernel. Compiled for baseline x86-64 with a per-function target
// attribute, so the library still runs on CPUs without AVX2: gemm.cpp calls it only after
// cpu_has_avx2_fma(). Packing, blocking and threading live in gemm.cpp.
#include "kernels/gemm.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include "kernels/avx2.hpp"
#define VIT_GEMM_X86 1
#endif

namespace vit::kernels::detail {

#ifdef VIT_GEMM_X86

bool cpu_has_avx2_fma() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// Twelve 8-lane accumulators hold the 6x16 tile; per k step two B loads and six A broadcasts
// feed twelve FMAs (15 of the 16 ymm registers). Packed panels and unpacked operands run the
// same instruction sequence, only the strides differ.
__attribute__((target("avx2,fma"))) void micro_kernel_avx2(int64_t kc, const Tile& t, float* c,
                                                           int64_t ldc, float alpha, float beta) {
  // Byte strides, so rows 1, 2, 4, 5 are base + index * {1, 2} addressing modes off two
  // pointers (rows 0 and 3): three pointer increments per k step and no register spills.
  const int64_t rs = t.a_rs * 4, cs = t.a_cs * 4, bs = t.b_ks;
  const char* pa = reinterpret_cast<const char*>(t.a);
  const char* pa3 = pa + 3 * rs;
  const float* b = t.b;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  const bool full = t.r0 == 0 && t.r1 == kMR && t.c0 == 0 && t.c1 == kNR;
  // Start pulling the C tile two tiles further down (6 rows of 64 bytes, maybe straddling two
  // lines) toward L1: gemm walks down a column panel, so that is the tile of the call after next,
  // and a fresh C (an activation just allocated) comes from DRAM; one call's k loop is too short
  // to hide that (W1's 6400-row products: ~8% faster with cold C). Past the matrix the hint is
  // dropped (prefetches never fault).
  if (full)
    for (int i = 2 * kMR; i < 3 * kMR; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
    }
  // The same for the multiplier (a GELU slope kept since the forward pass: from DRAM).
  if (full && t.mul)
    for (int i = 2 * kMR; i < 3 * kMR; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(t.mul + i * t.ldm), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(t.mul + i * t.ldm + kNR - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(reinterpret_cast<const float*>(pa));
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(reinterpret_cast<const float*>(pa + rs));
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(reinterpret_cast<const float*>(pa + 2 * rs));
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(reinterpret_cast<const float*>(pa3));
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(reinterpret_cast<const float*>(pa3 + rs));
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(reinterpret_cast<const float*>(pa3 + 2 * rs));
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    pa += cs;
    pa3 += cs;
    b += bs;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (full) {
    const __m256 bias0 = t.bias ? _mm256_loadu_ps(t.bias) : _mm256_setzero_ps();
    const __m256 bias1 = t.bias ? _mm256_loadu_ps(t.bias + 8) : _mm256_setzero_ps();
    for (int i = 0; i < kMR; ++i) {
      float* ci = c + i * ldc;
      __m256 v0, v1;
      if (beta == 0.0f) {
        v0 = _mm256_mul_ps(va, acc[i][0]);
        v1 = _mm256_mul_ps(va, acc[i][1]);
      } else {
        v0 = _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(ci)));
        v1 = _mm256_fmadd_ps(va, acc[i][1], _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8)));
      }
      if (t.mul) {
        v0 = _mm256_mul_ps(v0, _mm256_loadu_ps(t.mul + i * t.ldm));
        v1 = _mm256_mul_ps(v1, _mm256_loadu_ps(t.mul + i * t.ldm + 8));
      }
      if (t.bias) v0 = _mm256_add_ps(v0, bias0), v1 = _mm256_add_ps(v1, bias1);
      if (t.res) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(t.res + i * t.ldr));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(t.res + i * t.ldr + 8));
      }
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    }
    return;
  }
  // Edge tile: the same arithmetic through lane masks for columns [c0, c1), rows [r0, r1) only.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lo = _mm256_set1_epi32(t.c0 - 1), hi = _mm256_set1_epi32(t.c1);
  const __m256i eight = _mm256_set1_epi32(8);
  const __m256i mask[2] = {
      _mm256_and_si256(_mm256_cmpgt_epi32(lane, lo), _mm256_cmpgt_epi32(hi, lane)),
      _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_add_epi32(lane, eight), lo),
                       _mm256_cmpgt_epi32(hi, _mm256_add_epi32(lane, eight)))};
  for (int i = t.r0; i < t.r1; ++i)
    for (int h = 0; h < 2; ++h) {
      float* ch = c + i * ldc + 8 * h;
      __m256 v = beta == 0.0f ? _mm256_mul_ps(va, acc[i][h])
                              : _mm256_fmadd_ps(va, acc[i][h],
                                                _mm256_mul_ps(vb, _mm256_maskload_ps(ch, mask[h])));
      if (t.mul) v = _mm256_mul_ps(v, _mm256_maskload_ps(t.mul + i * t.ldm + 8 * h, mask[h]));
      if (t.bias) v = _mm256_add_ps(v, _mm256_maskload_ps(t.bias + 8 * h, mask[h]));
      if (t.res) v = _mm256_add_ps(v, _mm256_maskload_ps(t.res + i * t.ldr + 8 * h, mask[h]));
      _mm256_maskstore_ps(ch, mask[h], v);
    }
}

// A whole 16-column panel of a transposed B: dst[p][c] = src[c * ld + p] for c < 16, p < kc, by
// 8 x 8 register transposes (the scalar loop writes one float per 64-byte row of the panel).
__attribute__((target("avx2,fma"))) void pack_b_trans_avx2(float* dst, const float* src,
                                                           int64_t ld, int64_t kc) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8)
    for (int h = 0; h < 2; ++h) {
      const float* s = src + 8 * h * ld + p;
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ld);
      avx2::transpose8(r);
      // Row k of the 8 x 8 transpose (source column p + k) goes to dst[(p + k) * 16 + 8h ..].
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + (p + k) * kNR + 8 * h, r[k]);
    }
  for (; p < kc; ++p)
    for (int c = 0; c < kNR; ++c) dst[p * kNR + c] = src[c * ld + p];
}

#else  // not x86: the AVX2 kernel is never selected

bool cpu_has_avx2_fma() { return false; }
void micro_kernel_avx2(int64_t kc, const Tile& t, float* c, int64_t ldc, float alpha, float beta) {
  micro_kernel_portable(kc, t, c, ldc, alpha, beta);
}
void pack_b_trans_avx2(float* dst, const float* src, int64_t ld, int64_t kc) {
  for (int64_t p = 0; p < kc; ++p)
    for (int c = 0; c < kNR; ++c) dst[p * kNR + c] = src[c * ld + p];
}

#endif

}  // namespace vit::kernels::detail
