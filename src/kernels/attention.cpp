// Exact softmax attention. Default ("dense") path: per head, blocks of query rows against all keys
// (scores [rows, N] in scratch, full-row softmax, products by GEMM); the flash path (tiles with
// an online softmax, backward recomputing P per tile) is kept for dense_max_tokens below N.
// Inner loops are written so the compiler vectorises them without reassociating float sums:
// scores are accumulated as axpys over a transposed key tile (one accumulator per key), and
// P V, dS K, dS^T Q, P^T dO as axpys over the head width.
#include "kernels/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "kernels/attention_head.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/fast_math.hpp"
#include "kernels/gemm.hpp"
#include "kernels/qkv_layout.hpp"
#include "kernels/simd.hpp"

namespace vit::kernels {

namespace {

constexpr int64_t kQueryTile = 32;  // Br: query rows per tile
constexpr int64_t kKeyTile = 64;    // Bc: keys per tile (row stride of every [*, Bc] scratch tile)
// Up to AttentionDims::dense_max_tokens tokens a (b, h) pair is done densely: the whole [N, N]
// score matrix of one head (4 MiB per thread at 1024) in scratch and the products by the
// packed GEMM, which beats the tile loops by a wide margin for the small-N, small-d heads of
// the reference workloads. Longer sequences take the flash path (the N x N matrix never exists).
// Work items per thread block such that a block has at least ~2^18 multiply-adds: tiny calls
// (gradchecks, eval of small batches) stay on one thread instead of paying for a barrier.
int64_t grain_for(int64_t work_per_item) {
  constexpr int64_t kMinWork = int64_t{1} << 18;
  return std::max<int64_t>(1, kMinWork / std::max<int64_t>(1, work_per_item));
}

// s [rows, Bc] = a [rows, d] (row stride lda) @ bt [d, cols] (row stride Bc); columns >= cols untouched.
void tile_scores(float* __restrict s, const float* __restrict a, int64_t lda, int64_t rows,
                 const float* __restrict bt, int64_t cols, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict sr = s + r * kKeyTile;
    const float* ar = a + r * lda;
    for (int64_t j = 0; j < cols; ++j) sr[j] = 0.0f;
    for (int64_t t = 0; t < d; ++t) {
      const float x = ar[t];
      const float* __restrict b = bt + t * kKeyTile;
      for (int64_t j = 0; j < cols; ++j) sr[j] += x * b[j];
    }
  }
}

// dst [d, Bc] = transpose of `cols` rows of width d read from src with row stride ld.
void load_transposed(float* __restrict dst, const float* __restrict src, int64_t ld, int64_t cols,
                     int64_t d) {
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t t = 0; t < d; ++t) dst[t * kKeyTile + j] = src[j * ld + t];
}

inline void axpy(float* __restrict y, float a, const float* __restrict x, int64_t n) {
  for (int64_t c = 0; c < n; ++c) y[c] += a * x[c];
}

// The dropout mask of one query row: keep(j) is a pure function of (key, b, h, i, j), so the
// backward pass re-creates exactly the forward's mask without storing it.
class DropoutRow {
 public:
  DropoutRow(const AttentionDropout& dropout, int64_t b, int64_t h, int64_t i)
      : seed_(mix64(mix64(mix64(dropout.key ^ mix64(static_cast<uint64_t>(b))) ^
                          static_cast<uint64_t>(h)) ^ static_cast<uint64_t>(i))),
        threshold_(static_cast<uint64_t>(static_cast<double>(dropout.p) * 16777216.0)) {}
  // 24 uniform bits of the hash against p * 2^24.
  bool keep(int64_t j) const { return (mix64(seed_ ^ static_cast<uint64_t>(j)) >> 40) >= threshold_; }

 private:
  uint64_t seed_;
  uint64_t threshold_;
};


// Query rows per dense block: all of them while N x N scores fit ~1M floats (N <= 1024, one
// block: the whole head), else ~1M / N rows (4 MiB of scores per buffer per thread, so memory
// stays linear in N). AttentionDims::row_block overrides (tests).
int64_t row_block(const AttentionDims& dims) {
  const int64_t N = dims.tokens;
  if (dims.row_block > 0) return std::min(dims.row_block, N);
  constexpr int64_t kScores = int64_t{1} << 20;
  return N * N <= kScores ? N : std::max<int64_t>(kQueryTile, kScores / N);
}

// ---- dense path (N <= kDenseMaxTokens): one (b, h) pair per work item, products by GEMM ----

// The row passes below are built for baseline x86-64 and AVX2 + FMA (kernels/simd.hpp).

// Softmax of `rows` rows of S (length N, scores already scaled) in place, in three passes so
// that the exp runs once over the whole contiguous block (no per-row loop tails); lse[r] gets
// each row's log-sum-exp.
VIT_ALWAYS_INLINE void softmax_rows_body(float* __restrict s, int64_t rows, int64_t N,
                                         float* __restrict lse) {
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * N;
    lse[r] = row_max(sr, N);
    for (int64_t j = 0; j < N; ++j) sr[j] -= lse[r];
  }
  for (int64_t i = 0; i < rows * N; ++i) s[i] = fast_exp(s[i]);
  for (int64_t r = 0; r < rows; ++r) {
    float* sr = s + r * N;
    const float l = lane_sum(N, [&](int64_t j) { return sr[j]; });
    const float inv = 1.0f / l;
    for (int64_t j = 0; j < N; ++j) sr[j] *= inv;
    lse[r] += std::log(l);
  }
}
// s[j] = exp(s[j] - shift)
VIT_ALWAYS_INLINE void exp_shift_row_body(float* __restrict s, int64_t N, float shift) {
  for (int64_t j = 0; j < N; ++j) s[j] = fast_exp(s[j] - shift);
}
// dS = P * (dP - D_i) * scale, written over dP
VIT_ALWAYS_INLINE void dscores_row_body(float* __restrict dp, const float* __restrict p, int64_t N,
                                        float d_i, float scale) {
  for (int64_t j = 0; j < N; ++j) dp[j] = p[j] * (dp[j] - d_i) * scale;
}
VIT_SIMD_VARIANTS(void, softmax_rows, (float* s, int64_t rows, int64_t N, float* lse),
                  (s, rows, N, lse))
VIT_SIMD_VARIANTS(void, exp_shift_row, (float* s, int64_t N, float shift), (s, N, shift))
VIT_SIMD_VARIANTS(void, dscores_row, (float* dp, const float* p, int64_t N, float d_i, float scale),
                  (dp, p, N, d_i, scale))

void dense_forward(float* out, float* lse, float* probs, const float* qkv,
                   const AttentionDims& dims, const AttentionDropout& dropout) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim;
  const int64_t D = H * d, ld = 3 * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bool drop = dropout.p > 0.0f;
  const float keep_scale = drop ? 1.0f / (1.0f - dropout.p) : 1.0f;
  const int64_t R = row_block(dims);
  parallel_range(0, B * H, grain_for(2 * N * N * d), [&](int64_t lo, int64_t hi) {
    std::vector<float> s(static_cast<size_t>(R * N));  // [R, N] scores -> probabilities
    std::vector<float> row_lse(static_cast<size_t>(R));
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const auto [q, k, v] = qkv_head(qkv, b, h, N, D, d);
      for (int64_t i0 = 0; i0 < N; i0 += R) {
        const int64_t rows = std::min(R, N - i0);
        // S = Q K^T / sqrt(d) for query rows [i0, i0 + rows), softmax in place; straight into
        // the kept probabilities when there are some and no dropout changes them afterwards.
        float* kept = probs ? probs + (bh * N + i0) * N : nullptr;
        float* sb = kept && !drop ? kept : s.data();
        gemm(false, true, rows, N, d, scale, q + i0 * ld, ld, k, ld, 0.0f, sb, N);
        softmax_rows(sb, rows, N, row_lse.data());
        if (lse) std::copy(row_lse.begin(), row_lse.begin() + rows, lse + bh * N + i0);
        if (drop)
          for (int64_t r = 0; r < rows; ++r) {
            float* sr = sb + r * N;
            if (kept) std::copy(sr, sr + N, kept + r * N);
            const DropoutRow mask(dropout, b, h, i0 + r);
            for (int64_t j = 0; j < N; ++j) sr[j] = mask.keep(j) ? sr[j] * keep_scale : 0.0f;
          }
        // O = P V, written straight into the merged-heads output
        gemm(false, false, rows, d, N, 1.0f, sb, N, v, ld, 0.0f, out + (b * N + i0) * D + h * d, D);
      }
    }
  });
}

void dense_backward(float* dqkv, bool fresh, const float* dout, const float* out,
                    const float* lse, const float* probs, const float* qkv,
                    const AttentionDims& dims, const AttentionDropout& dropout) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim;
  const int64_t D = H * d, ld = 3 * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bool drop = dropout.p > 0.0f;
  const float keep_scale = drop ? 1.0f / (1.0f - dropout.p) : 1.0f;
  const int64_t R = row_block(dims);
  parallel_range(0, B * H, grain_for(4 * N * N * d), [&](int64_t lo, int64_t hi) {
    std::vector<float> s(static_cast<size_t>(R * N)), dp(static_cast<size_t>(R * N));
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const auto [q, k, v] = qkv_head(qkv, b, h, N, D, d);
      float* dbase = dqkv + b * N * ld;
      const float* dO = dout + b * N * D + h * d;  // row n at dO + n * D
      const float* O = out + b * N * D + h * d;
      const float* lse_bh = lse ? lse + bh * N : nullptr;  // null when probs are kept
      for (int64_t i0 = 0; i0 < N; i0 += R) {  // query-row blocks in order: fixed dK, dV sums
        const int64_t rows = std::min(R, N - i0);
        // P: the forward's, kept, or recomputed in s as exp(S - lse)
        const float* P = probs ? probs + (bh * N + i0) * N : s.data();
        if (!probs)
          gemm(false, true, rows, N, d, scale, q + i0 * ld, ld, k, ld, 0.0f, s.data(), N);  // S
        gemm(false, true, rows, N, d, 1.0f, dO + i0 * D, D, v, ld, 0.0f, dp.data(), N);   // dP~ = dO V^T
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          float* sr = s.data() + r * N;
          const float* pr = P + r * N;
          float* dpr = dp.data() + r * N;
          const float* dor = dO + i * D;
          const float* orow = O + i * D;
          const float d_i = lane_sum(d, [&](int64_t t) { return dor[t] * orow[t]; });  // rowsum(dO O)
          if (!probs) exp_shift_row(sr, N, lse_bh[i]);  // P = exp(S - lse)
          if (drop) {
            const DropoutRow mask(dropout, b, h, i);
            for (int64_t j = 0; j < N; ++j) {
              const float keep = mask.keep(j) ? keep_scale : 0.0f;
              const float p = pr[j];
              sr[j] = p * keep;                              // dropped probability P~
              dpr[j] = p * (dpr[j] * keep - d_i) * scale;    // dS, with 1/sqrt(d) folded in
            }
          } else {
            dscores_row(dpr, pr, N, d_i, scale);
          }
        }
        const float* Pd = drop ? s.data() : P;  // P~, the probabilities after dropout
        const float beta_kv = fresh && i0 == 0 ? 0.0f : 1.0f, beta_q = fresh ? 0.0f : 1.0f;
        gemm(true, false, N, d, rows, 1.0f, Pd, N, dO + i0 * D, D, beta_kv, dbase + 2 * D + h * d, ld);  // dV += P~^T dO
        gemm(true, false, N, d, rows, 1.0f, dp.data(), N, q + i0 * ld, ld, beta_kv, dbase + D + h * d, ld);    // dK += dS^T Q
        gemm(false, false, rows, d, N, 1.0f, dp.data(), N, k, ld, beta_q, dbase + i0 * ld + h * d, ld);      // dQ += dS K
      }
    }
  });
}

// ---- head-kernel path (kernels/attention_head): short sequences, narrow heads ----

bool use_head_kernel(const AttentionDims& dims, const AttentionDropout& dropout) {
  return dims.head_kernel && dropout.p == 0.0f && dims.tokens <= dims.dense_max_tokens &&
         row_block(dims) == dims.tokens && detail::head_kernel_applies(dims.tokens, dims.head_dim);
}

detail::HeadOperands head_operands(const float* qkv, const AttentionDims& dims, int64_t bh) {
  const int64_t N = dims.tokens, H = dims.heads, d = dims.head_dim, D = H * d;
  const auto [q, k, v] = qkv_head(qkv, bh / H, bh % H, N, D, d);
  return {q, k, v, 3 * D, N, d, 1.0f / std::sqrt(static_cast<float>(d))};
}

// The next head's q, k, v rows (and, for backward, its dout rows and kept probabilities), to
// be prefetched while this head computes.
detail::Trickle next_head_reads(const float* qkv, const AttentionDims& dims, int64_t bh) {
  const int64_t N = dims.tokens, d = dims.head_dim, D = dims.heads * d;
  const auto [q, k, v] = qkv_head(qkv, bh / dims.heads, bh % dims.heads, N, D, d);
  detail::Trickle t;
  for (const float* x : {q, k, v}) t.add(x, N, 3 * D, d);
  return t;
}
detail::Trickle next_head_backward_reads(const float* qkv, const float* dout, const float* probs,
                                         const AttentionDims& dims, int64_t bh) {
  const int64_t N = dims.tokens, H = dims.heads, d = dims.head_dim, D = H * d;
  detail::Trickle t = next_head_reads(qkv, dims, bh);
  t.add(dout + bh / H * N * D + bh % H * d, N, D, d);
  const int64_t Np = detail::padded_tokens(N);
  if (probs) t.add(probs + bh * N * Np, N, Np, Np);
  return t;
}

void heads_forward(float* out, float* lse, float* probs, const float* qkv, const AttentionDims& dims) {
  const int64_t N = dims.tokens, H = dims.heads, d = dims.head_dim, D = H * d;
  const int64_t Np = detail::padded_tokens(N);
  parallel_range(0, dims.batch * H, grain_for(2 * N * N * d), [&](int64_t lo, int64_t hi) {
    std::vector<float> scratch(static_cast<size_t>(detail::head_scratch_floats(N, d)));
    for (int64_t bh = lo; bh < hi; ++bh) {
      detail::Trickle next;
      if (bh + 1 < hi) next = next_head_reads(qkv, dims, bh + 1);
      detail::head_forward(head_operands(qkv, dims, bh), out + (bh / H) * N * D + (bh % H) * d, D,
                           probs ? probs + bh * N * Np : nullptr, lse ? lse + bh * N : nullptr,
                           scratch.data(), &next);
    }
  });
}

// Head bh's dq, dk, dv into g (its sample's dq at g + h * d, dk at + D, dv at + 2D; rows 3D apart),
// prefetching what head next_bh reads (none when negative).
void head_backward_at(float* g, bool fresh, bool stream, const float* dout, const float* probs,
                      const float* qkv, const AttentionDims& dims, int64_t bh, float* scratch,
                      int64_t next_bh) {
  const int64_t N = dims.tokens, H = dims.heads, d = dims.head_dim, D = H * d;
  const int64_t h = bh % H;
  detail::Trickle next;
  if (next_bh >= 0) next = next_head_backward_reads(qkv, dout, probs, dims, next_bh);
  detail::head_backward(head_operands(qkv, dims, bh), dout + bh / H * N * D + h * d, D,
                        probs ? probs + bh * N * detail::padded_tokens(N) : nullptr, g + h * d,
                        g + D + h * d, g + 2 * D + h * d, 3 * D, fresh, stream, scratch, &next);
}

void heads_backward(float* dqkv, bool fresh, const float* dout, const float* probs,
                    const float* qkv, const AttentionDims& dims) {
  const int64_t N = dims.tokens, H = dims.heads, d = dims.head_dim, D = H * d;
  parallel_range(0, dims.batch * H, grain_for(4 * N * N * d), [&](int64_t lo, int64_t hi) {
    std::vector<float> scratch(static_cast<size_t>(detail::head_scratch_floats(N, d)));
    for (int64_t bh = lo; bh < hi; ++bh) {
      head_backward_at(dqkv + bh / H * N * 3 * D, fresh, true, dout, probs, qkv, dims, bh,
                       scratch.data(), bh + 1 < hi ? bh + 1 : -1);
    }
  });
}

}  // namespace

int64_t attention_probs_floats(const AttentionDims& dims, const AttentionDropout& dropout) {
  const int64_t N = dims.tokens;
  const int64_t row = use_head_kernel(dims, dropout) ? detail::padded_tokens(N) : N;
  return dims.batch * dims.heads * N * row;
}

void attention_forward(float* out, float* lse, const float* qkv, const AttentionDims& dims,
                       const AttentionDropout& dropout, float* probs) {
  if (use_head_kernel(dims, dropout)) return heads_forward(out, lse, probs, qkv, dims);
  if (dims.tokens <= dims.dense_max_tokens)
    return dense_forward(out, lse, probs, qkv, dims, dropout);
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim;
  const int64_t D = H * d, ld = 3 * D;
  const int64_t query_tiles = (N + kQueryTile - 1) / kQueryTile;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bool drop = dropout.p > 0.0f;
  const float keep_scale = drop ? 1.0f / (1.0f - dropout.p) : 1.0f;

  parallel_range(0, B * H * query_tiles, grain_for(2 * kQueryTile * N * d), [&](int64_t lo, int64_t hi) {
    // Per-thread scratch, O(tile): scaled queries, scores, transposed keys, accumulators.
    std::vector<float> qs(kQueryTile * d), s(kQueryTile * kKeyTile), kt(d * kKeyTile);
    std::vector<float> acc(kQueryTile * d), m(kQueryTile), l(kQueryTile);
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t bh = item / query_tiles, b = bh / H, h = bh % H;
      const int64_t i0 = (item % query_tiles) * kQueryTile;
      const int64_t rows = std::min(kQueryTile, N - i0);
      const auto [q, k, v] = qkv_head(qkv, b, h, N, D, d);          // row n at q + n * ld

      for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < d; ++t) qs[r * d + t] = q[(i0 + r) * ld + t] * scale;
      std::fill(acc.begin(), acc.end(), 0.0f);
      std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
      std::fill(l.begin(), l.end(), 0.0f);

      for (int64_t j0 = 0; j0 < N; j0 += kKeyTile) {
        const int64_t cols = std::min(kKeyTile, N - j0);
        load_transposed(kt.data(), k + j0 * ld, ld, cols, d);
        tile_scores(s.data(), qs.data(), d, rows, kt.data(), cols, d);
        for (int64_t r = 0; r < rows; ++r) {
          float* sr = s.data() + r * kKeyTile;
          float tile_max = sr[0];
          for (int64_t j = 1; j < cols; ++j) tile_max = std::max(tile_max, sr[j]);
          const float m_new = std::max(m[r], tile_max);
          const float alpha = fast_exp(m[r] - m_new);  // 0 on the first tile (m = -inf)
          exp_shift_row(sr, cols, m_new);
          float tile_sum = 0.0f;
          for (int64_t j = 0; j < cols; ++j) tile_sum += sr[j];
          l[r] = l[r] * alpha + tile_sum;  // the normaliser counts every key, dropped or not
          m[r] = m_new;
          float* ar = acc.data() + r * d;
          if (alpha != 1.0f)
            for (int64_t c = 0; c < d; ++c) ar[c] *= alpha;
          if (drop) {
            const DropoutRow mask(dropout, b, h, i0 + r);
            for (int64_t j = 0; j < cols; ++j) sr[j] = mask.keep(j0 + j) ? sr[j] * keep_scale : 0.0f;
          }
          for (int64_t j = 0; j < cols; ++j)
            if (sr[j] != 0.0f) axpy(ar, sr[j], v + (j0 + j) * ld, d);
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        float* o = out + (b * N + i0 + r) * D + h * d;
        const float inv = 1.0f / l[r];
        for (int64_t c = 0; c < d; ++c) o[c] = acc[r * d + c] * inv;
        if (lse) lse[bh * N + i0 + r] = m[r] + std::log(l[r]);
      }
    }
  });
}

void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, const AttentionDims& dims, const AttentionDropout& dropout,
                        const float* probs, bool dqkv_fresh) {
  if (use_head_kernel(dims, dropout))
    return heads_backward(dqkv, dqkv_fresh, dout, probs, qkv, dims);
  if (dims.tokens <= dims.dense_max_tokens)
    return dense_backward(dqkv, dqkv_fresh, dout, out, lse, probs, qkv, dims, dropout);
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim;
  const int64_t D = H * d, ld = 3 * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bool drop = dropout.p > 0.0f;
  const float keep_scale = drop ? 1.0f / (1.0f - dropout.p) : 1.0f;
  if (dqkv_fresh) std::fill(dqkv, dqkv + B * N * ld, 0.0f);

  // One (b, h) pair per work item: it owns dq, dk, dv of that head, so accumulation order is
  // fixed (query tiles in order, rows in order) whatever the thread count.
  parallel_range(0, B * H, grain_for(4 * N * N * d), [&](int64_t lo, int64_t hi) {
    std::vector<float> qs(kQueryTile * d), dq(kQueryTile * d), drow(kQueryTile);
    std::vector<float> s(kQueryTile * kKeyTile), dp(kQueryTile * kKeyTile);
    std::vector<float> kt(d * kKeyTile), vt(d * kKeyTile);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const auto [q, k, v] = qkv_head(qkv, b, h, N, D, d);
      float* dbase = dqkv + b * N * ld;
      float* dqg = dbase + h * d;
      float* dkg = dbase + D + h * d;
      float* dvg = dbase + 2 * D + h * d;
      const float* dO = dout + b * N * D + h * d;  // row n at dO + n * D
      const float* O = out + b * N * D + h * d;
      const float* lse_bh = lse + bh * N;

      for (int64_t i0 = 0; i0 < N; i0 += kQueryTile) {
        const int64_t rows = std::min(kQueryTile, N - i0);
        for (int64_t r = 0; r < rows; ++r) {
          const float* qr = q + (i0 + r) * ld;
          const float* dor = dO + (i0 + r) * D;
          const float* orow = O + (i0 + r) * D;
          float acc = 0.0f;  // D_i = rowsum(dO_i * O_i)
          for (int64_t t = 0; t < d; ++t) {
            qs[r * d + t] = qr[t] * scale;
            acc += dor[t] * orow[t];
          }
          drow[r] = acc;
        }
        std::fill(dq.begin(), dq.end(), 0.0f);

        for (int64_t j0 = 0; j0 < N; j0 += kKeyTile) {
          const int64_t cols = std::min(kKeyTile, N - j0);
          load_transposed(kt.data(), k + j0 * ld, ld, cols, d);
          load_transposed(vt.data(), v + j0 * ld, ld, cols, d);
          tile_scores(s.data(), qs.data(), d, rows, kt.data(), cols, d);          // S = Q K^T / sqrt(d)
          tile_scores(dp.data(), dO + i0 * D, D, rows, vt.data(), cols, d);     // dP~ = dO V^T
          for (int64_t r = 0; r < rows; ++r) {
            float* sr = s.data() + r * kKeyTile;
            float* dpr = dp.data() + r * kKeyTile;
            const float lse_r = lse_bh[i0 + r];
            const float d_r = drow[r];
            if (drop) {
              const DropoutRow mask(dropout, b, h, i0 + r);
              for (int64_t j = 0; j < cols; ++j) {
                const float p = fast_exp(sr[j] - lse_r);
                const float keep = mask.keep(j0 + j) ? keep_scale : 0.0f;
                sr[j] = p * keep;                              // dropped probability P~
                dpr[j] = p * (dpr[j] * keep - d_r) * scale;    // dS, with 1/sqrt(d) folded in
              }
            } else {
              exp_shift_row(sr, cols, lse_r);
              dscores_row(dpr, sr, cols, d_r, scale);
            }
            const float* dor = dO + (i0 + r) * D;
            const float* qr = q + (i0 + r) * ld;
            float* dqr = dq.data() + r * d;
            for (int64_t j = 0; j < cols; ++j) {
              const int64_t row = (j0 + j) * ld;
              if (sr[j] != 0.0f) axpy(dvg + row, sr[j], dor, d);  // dV += P~^T dO
              axpy(dkg + row, dpr[j], qr, d);                      // dK += dS^T Q
              axpy(dqr, dpr[j], k + row, d);                       // dQ += dS K
            }
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          float* dst = dqg + (i0 + r) * ld;
          for (int64_t c = 0; c < d; ++c) dst[c] += dq[r * d + c];
        }
      }
    }
  });
}

bool attention_in_cache(const AttentionDims& dims, const AttentionDropout& dropout) {
  return use_head_kernel(dims, dropout);
}

void attention_backward_by_samples(const float* dout, const float* probs, const float* qkv,
                                   const AttentionDims& dims, int64_t chunks, int64_t group,
                                   const DqkvConsumer& consume) {
  VIT_CHECK(attention_in_cache(dims, {}) && probs && chunks > 0 && group > 0,
            "attention_backward_by_samples: needs the head kernel, the kept probabilities, and "
            "positive chunks and group");
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim;
  const int64_t row = N * 3 * H * d;  // one sample's dqkv
  parallel_for(0, chunks, [&](int64_t c) {
    thread_local std::vector<float> g;  // grow-only: a fresh mapping per call would page-fault
    if (g.size() < static_cast<size_t>(group * row)) g.resize(static_cast<size_t>(group * row));
    std::vector<float> scratch(static_cast<size_t>(detail::head_scratch_floats(N, d)));
    const int64_t end = B * (c + 1) / chunks;
    for (int64_t s0 = B * c / chunks; s0 < end; s0 += group) {
      const int64_t s1 = std::min(s0 + group, end);
      for (int64_t bh = s0 * H; bh < s1 * H; ++bh) {
        head_backward_at(g.data() + (bh / H - s0) * row, true, false, dout, probs, qkv, dims, bh,
                         scratch.data(), bh + 1 < end * H ? bh + 1 : -1);
      }
      consume(c, s0, s1, g.data());
    }
  });
}

}  // namespace vit::kernels
