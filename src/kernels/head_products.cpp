// The register-tiled products of head_products.hpp.
#include "kernels/head_products.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include "kernels/avx2.hpp"

namespace vit::kernels::detail {

namespace {

// C[r * ldc + c] (written as w says) sum_{k < K} A[r * a_rs + k * a_ks] B[k * ldb + c] for r < R and
// 8V columns from b.
template <int R, int V>
VIT_AVX2_FMA VIT_ALWAYS_INLINE void value_tile(float* c, int64_t ldc, Write w, const float* a,
                                       int64_t a_rs, int64_t a_ks, const float* b, int64_t ldb,
                                       int64_t K) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m256 bk[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bk[v] = _mm256_loadu_ps(b + k * ldb + 8 * v);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * a_rs + k * a_ks);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(x, bk[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      float* cv = c + r * ldc + 8 * v;
      switch (w) {
        case Write::Store: _mm256_storeu_ps(cv, acc[r][v]); break;
        case Write::Stream: _mm256_stream_ps(cv, acc[r][v]); break;
        case Write::Add: _mm256_storeu_ps(cv, _mm256_add_ps(_mm256_loadu_ps(cv), acc[r][v])); break;
      }
    }
}

// Scores are the same tile with A read by rows (a_ks = 1) and Bt as B: 24 columns at a time.
template <int R>
VIT_AVX2_FMA void score_rows(float* c, int64_t ldc, const float* a, int64_t lda,
                                const float* bt, int64_t Np, int64_t d) {
  int64_t j = 0;
  for (; j + 24 <= Np; j += 24)
    value_tile<R, 3>(c + j, ldc, Write::Store, a, lda, 1, bt + j, Np, d);
  if (Np - j == 16) value_tile<R, 2>(c + j, ldc, Write::Store, a, lda, 1, bt + j, Np, d);
  if (Np - j == 8) value_tile<R, 1>(c + j, ldc, Write::Store, a, lda, 1, bt + j, Np, d);
}

template <int R>
VIT_AVX2_FMA void value_rows(float* c, int64_t ldc, Write w, const float* a, int64_t a_rs,
                                int64_t a_ks, const float* b, int64_t ldb, int64_t K, int64_t d) {
  int64_t col = 0;
  for (; col + 16 <= d; col += 16) value_tile<R, 2>(c + col, ldc, w, a, a_rs, a_ks, b + col, ldb, K);
  if (col < d) value_tile<R, 1>(c + col, ldc, w, a, a_rs, a_ks, b + col, ldb, K);
}

}  // namespace

// C [M, Np] (row stride ldc) = A [M, d] (row stride lda) Bt [d, Np].
VIT_AVX2_FMA void scores(float* c, int64_t ldc, const float* a, int64_t lda, int64_t M,
                            const float* bt, int64_t Np, int64_t d) {
  int64_t r = 0;
  for (; r + 4 <= M; r += 4) score_rows<4>(c + r * ldc, ldc, a + r * lda, lda, bt, Np, d);
  const float* ar = a + r * lda;
  float* cr = c + r * ldc;
  switch (M - r) {
    case 3: score_rows<3>(cr, ldc, ar, lda, bt, Np, d); break;
    case 2: score_rows<2>(cr, ldc, ar, lda, bt, Np, d); break;
    case 1: score_rows<1>(cr, ldc, ar, lda, bt, Np, d); break;
    default: break;
  }
}

// C [M, d] (row stride ldc; written as w says) = A(r, k) = a[r * a_rs + k * a_ks] times
// B [K, d] (row stride ldb).
VIT_AVX2_FMA void values(float* c, int64_t ldc, Write w, const float* a, int64_t a_rs,
                            int64_t a_ks, int64_t M, const float* b, int64_t ldb, int64_t K,
                            int64_t d) {
  int64_t r = 0;
  for (; r + 6 <= M; r += 6) value_rows<6>(c + r * ldc, ldc, w, a + r * a_rs, a_rs, a_ks, b, ldb, K, d);
  float* cr = c + r * ldc;
  const float* ar = a + r * a_rs;
  switch (M - r) {
    case 5: value_rows<5>(cr, ldc, w, ar, a_rs, a_ks, b, ldb, K, d); break;
    case 4: value_rows<4>(cr, ldc, w, ar, a_rs, a_ks, b, ldb, K, d); break;
    case 3: value_rows<3>(cr, ldc, w, ar, a_rs, a_ks, b, ldb, K, d); break;
    case 2: value_rows<2>(cr, ldc, w, ar, a_rs, a_ks, b, ldb, K, d); break;
    case 1: value_rows<1>(cr, ldc, w, ar, a_rs, a_ks, b, ldb, K, d); break;
    default: break;
  }
}

}  // namespace vit::kernels::detail

#endif
