// The in-cache attention head (see attention_head.hpp). The two register-tiled products of
// kernels/head_products cover all five of a head's matrix products:
//   scores: C[r, j] = sum_t A[r, t] Bt[t, j] over a transposed, zero-padded operand Bt [d, Np]
//           (S = Q (scale K)^T and dP = dO V^T), whole 8-column vectors;
//   values: C[r, c] = sum_k A(r, k) B[k, c] with A read through (row, k) strides, so P V, dS K
//           and the transposed P^T dO, dS^T Q need no transposed copy.
// Scratch layout: Kt, Vt [d, Np] and S/P, dS [N, Np], rows 32-byte multiples.
#include "kernels/attention_head.hpp"

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/head_products.hpp"
#include "kernels/simd.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include "kernels/avx2.hpp"
#define VIT_HEAD_X86 1
#endif

namespace vit::kernels::detail {

bool head_kernel_applies(int64_t tokens, int64_t head_dim) {
#ifdef VIT_HEAD_X86
  return simd_avx2_fma() && tokens >= 1 && tokens <= kHeadMaxTokens && head_dim % 8 == 0 &&
         head_dim >= 8 && head_dim <= kHeadMaxDim;
#else
  (void)tokens, (void)head_dim;
  return false;
#endif
}

int64_t head_scratch_floats(int64_t tokens, int64_t head_dim) {
  const int64_t Np = padded_tokens(tokens);
  return 2 * head_dim * Np + 2 * tokens * Np;
}

#ifdef VIT_HEAD_X86

namespace {

// dst[t * Np + j] = s * src[j * ld + t] for j < N, t < d; 0 for N <= j < Np. 8 x 8 register
// transposes for whole blocks of 8 rows, scalar for the last partial block.
VIT_AVX2_FMA void transpose_padded(float* dst, const float* src, int64_t ld, int64_t N,
                                   int64_t Np, int64_t d, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t j0 = 0;
  for (; j0 + 8 <= N; j0 += 8)
    for (int64_t t0 = 0; t0 < d; t0 += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (j0 + i) * ld + t0);
      avx2::transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (t0 + i) * Np + j0, _mm256_mul_ps(vs, r[i]));
    }
  for (int64_t t = 0; t < d; ++t)
    for (int64_t j = j0; j < Np; ++j) dst[t * Np + j] = j < N ? s * src[j * ld + t] : 0.0f;
}

// Rows of scores s [N, Np] -> probabilities in place (columns N..Np become 0), also copied to
// `keep` when not null: by non-temporal stores if 32-byte aligned (as a Tensor's storage is),
// since the kept probabilities are read back only in backward, long after they have left the
// cache, so their lines need not be fetched first. lse[i] (if not null) = log sum_j exp(s[i, j]).
// In passes over all rows (maxima; exps and row sums; scaling): one row's chain (max, then exps,
// then sum, then 1/sum) is latency-bound, while a pass keeps many independent rows in flight.
// `rows` [2N] is scratch for the maxima and sums.
VIT_AVX2_FMA void softmax_rows(float* s, int64_t N, int64_t Np, float* lse, float* rows,
                               float* keep, Trickle* next) {
  // The last vector's padding lanes (N..Np) are set to -inf so they exp to 0.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i first_pad = _mm256_set1_epi32(static_cast<int>(N - (Np - 8)));
  const __m256 pad = _mm256_castsi256_ps(
      _mm256_cmpgt_epi32(lane, _mm256_sub_epi32(first_pad, _mm256_set1_epi32(1))));
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const bool stream = keep && reinterpret_cast<uintptr_t>(keep) % 32 == 0;  // rows are 32-byte multiples
  float* mx = rows;
  float* sum = rows + N;
  for (int64_t i = 0; i < N; ++i) {
    float* row = s + i * Np;
    const __m256 last = _mm256_blendv_ps(_mm256_loadu_ps(row + Np - 8), neg_inf, pad);
    _mm256_storeu_ps(row + Np - 8, last);
    __m256 m = last;
    for (int64_t j = 0; j < Np - 8; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(row + j));
    mx[i] = avx2::hmax(m);
  }
  for (int64_t i = 0; i < N; ++i) {
    float* row = s + i * Np;
    if (next) next->step();
    const __m256 shift = _mm256_set1_ps(mx[i]);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < Np; j += 8) {
      const __m256 e = avx2::exp(_mm256_sub_ps(_mm256_loadu_ps(row + j), shift));
      _mm256_storeu_ps(row + j, e);
      acc = _mm256_add_ps(acc, e);
    }
    sum[i] = avx2::hsum(acc);
  }
  for (int64_t i = 0; i < N; ++i) {
    float* row = s + i * Np;
    const __m256 inv = _mm256_set1_ps(1.0f / sum[i]);
    for (int64_t j = 0; j < Np; j += 8) {
      const __m256 pj = _mm256_mul_ps(inv, _mm256_loadu_ps(row + j));
      _mm256_storeu_ps(row + j, pj);
      if (stream) _mm256_stream_ps(keep + i * Np + j, pj);
      else if (keep) _mm256_storeu_ps(keep + i * Np + j, pj);
    }
  }
  if (lse)
    for (int64_t i = 0; i < N; ++i) lse[i] = mx[i] + std::log(sum[i]);
}

// f(r, m) for the row blocks [r, r + m) of M rows, `block` at a time, with a step of `next`
// (if not null) after each: the products split this way compute the same bits.
template <typename F>
VIT_ALWAYS_INLINE void row_blocks(int64_t M, int64_t block, Trickle* next, F f) {
  for (int64_t r = 0; r < M; r += block) {
    f(r, M - r < block ? M - r : block);
    if (next) next->step();
  }
}
int64_t blocks(int64_t M, int64_t block) { return (M + block - 1) / block; }
constexpr int64_t kScoreRows = 4, kValueRows = 6;  // head_products' register tile heights

// P [N, Np] = softmax(scale q k^T) (and a copy in keep, if not null); kt [d, Np] as scratch.
VIT_AVX2_FMA void probabilities(const HeadOperands& x, float* p, float* lse, float* kt,
                                float* keep, Trickle* next) {
  const int64_t N = x.tokens, Np = padded_tokens(N), d = x.head_dim;
  transpose_padded(kt, x.k, x.ld, N, Np, d, x.scale);
  row_blocks(N, kScoreRows, next, [&](int64_t r, int64_t m) {
    scores(p + r * Np, Np, x.q + r * x.ld, x.ld, m, kt, Np, d);
  });
  // kt is done with: its first 2N <= d Np floats hold the row statistics
  softmax_rows(p, N, Np, lse, kt, keep, next);
}

}  // namespace

VIT_AVX2_FMA void head_forward(const HeadOperands& x, float* o, int64_t ldo, float* p,
                               float* lse, float* scratch, Trickle* next) {
  const int64_t N = x.tokens, Np = padded_tokens(N);
  float* kt = scratch;              // [d, Np]
  float* pw = kt + x.head_dim * Np;  // [N, Np]
  if (next) next->pace(blocks(N, kScoreRows) + N + blocks(N, kValueRows));
  probabilities(x, pw, lse, kt, p, next);
  row_blocks(N, kValueRows, next, [&](int64_t r, int64_t m) {  // O = P V
    values(o + r * ldo, ldo, Write::Store, pw + r * Np, Np, 1, m, x.v, x.ld, N, x.head_dim);
  });
  if (p) _mm_sfence();  // the streamed rows are visible before the caller's barrier
}

VIT_AVX2_FMA void head_backward(const HeadOperands& x, const float* dout, int64_t ldo,
                                const float* p, float* dq, float* dk, float* dv, int64_t ldg,
                                bool fresh, bool stream_fresh, float* scratch, Trickle* next) {
  const int64_t N = x.tokens, Np = padded_tokens(N), d = x.head_dim;
  float* vt = scratch;               // [d, Np]
  float* ds = vt + d * Np;           // [N, Np]: dP, then dS
  if (next)
    next->pace(2 * blocks(N, kScoreRows) + 3 * blocks(N, kValueRows) +
               (p ? 0 : blocks(N, kScoreRows) + N));
  if (!p) {                          // recompute P exactly as the forward did
    float* pw = ds + N * Np;
    probabilities(x, pw, nullptr, pw + N * Np, nullptr, next);
    p = pw;
  }
  transpose_padded(vt, x.v, x.ld, N, Np, d, 1.0f);
  row_blocks(N, kScoreRows, next, [&](int64_t r, int64_t m) {  // dP = dO V^T (0 past column N)
    scores(ds + r * Np, Np, dout + r * ldo, ldo, m, vt, Np, d);
  });
  const __m256 vscale = _mm256_set1_ps(x.scale);
  for (int64_t i = 0; i < N; ++i) {
    if (next && i % kScoreRows == 0) next->step();
    // dS = P (dP - D_i) scale with D_i = sum_j P_ij dP_ij (= dO_i . O_i, without reading O);
    // 0 past column N
    const float* pr = p + i * Np;
    float* dsr = ds + i * Np;
    __m256 dot = _mm256_mul_ps(_mm256_loadu_ps(pr), _mm256_loadu_ps(dsr));
    for (int64_t j = 8; j < Np; j += 8)
      dot = _mm256_fmadd_ps(_mm256_loadu_ps(pr + j), _mm256_loadu_ps(dsr + j), dot);
    const __m256 di = _mm256_set1_ps(avx2::hsum(dot));
    for (int64_t j = 0; j < Np; j += 8) {
      const __m256 g = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(dsr + j), di), vscale);
      _mm256_storeu_ps(dsr + j, _mm256_mul_ps(_mm256_loadu_ps(pr + j), g));
    }
  }
  // A fresh gradient is streamed (W1 step: attention backward 13 -> 11 ms) when the caller allows
  // and its rows are 32-byte aligned, as a Tensor's are for d a multiple of 8.
  auto aligned = [](const float* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 32 == 0; };
  const bool stream = stream_fresh && fresh && ldg % 8 == 0 && aligned(dq) && aligned(dk) &&
                      aligned(dv);
  const Write w = !fresh ? Write::Add : stream ? Write::Stream : Write::Store;
  row_blocks(N, kValueRows, next, [&](int64_t r, int64_t m) {  // dV = P^T dO
    values(dv + r * ldg, ldg, w, p + r, 1, Np, m, dout, ldo, N, d);
  });
  row_blocks(N, kValueRows, next, [&](int64_t r, int64_t m) {  // dK = dS^T Q
    values(dk + r * ldg, ldg, w, ds + r, 1, Np, m, x.q, x.ld, N, d);
  });
  row_blocks(N, kValueRows, next, [&](int64_t r, int64_t m) {  // dQ = dS K
    values(dq + r * ldg, ldg, w, ds + r * Np, Np, 1, m, x.k, x.ld, N, d);
  });
  if (stream) _mm_sfence();
}

#else  // not x86: head_kernel_applies() is false, so these are never called

void head_forward(const HeadOperands&, float*, int64_t, float*, float*, float*, Trickle*) {}
void head_backward(const HeadOperands&, const float*, int64_t, const float*,
                   float*, float*, float*, int64_t, bool, bool, float*, Trickle*) {}

#endif

}  // namespace vit::kernels::detail
