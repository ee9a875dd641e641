// The in-cache head kernel (kernels/attention_head) against the GEMM path of the same kernels
// (AttentionDims::head_kernel = false) and a double-precision reference: every padding of N to a
// multiple of 8, every register-tile width of d, kept and recomputed probabilities, fresh and
// accumulated gradients, extreme scores, NaN propagation and thread-count bit identity.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "core/parallel.hpp"
#include "kernels/attention.hpp"
#include "kernels/attention_head.hpp"

using namespace vit;
using kernels::AttentionDims;

namespace {

struct HeadRun {
  std::vector<float> out, lse, probs, dqkv;
};

// Forward (keeping probabilities or the log-sum-exp) and backward into a buffer that starts at
// `init` (fresh: a NaN buffer the backward must overwrite).
HeadRun run(AttentionDims dm, bool head, const Tensor& qkv, const Tensor& dout, bool keep,
        bool fresh = false, float init = 0.5f) {
  dm.head_kernel = head;
  const int64_t D = dm.heads * dm.head_dim;
  Tensor out = Tensor::empty({dm.batch, dm.tokens, D});
  Tensor lse = Tensor::full({dm.batch, dm.heads, dm.tokens}, -1.0f);
  Tensor probs = Tensor::full({kernels::attention_probs_floats(dm, {})}, -1.0f);
  kernels::attention_forward(out.data(), lse.data(), qkv.data(), dm, {}, keep ? probs.data() : nullptr);
  Tensor dqkv = Tensor::full(qkv.shape(), fresh ? std::nanf("") : init);
  kernels::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), dm, {},
                              keep ? probs.data() : nullptr, fresh);
  return {out.to_vector(), lse.to_vector(), probs.to_vector(), dqkv.to_vector()};
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

bool available(int64_t N, int64_t d) { return kernels::detail::head_kernel_applies(N, d); }

}  // namespace

TEST(AttentionHead, AppliesToShortSequencesOfNarrowHeads) {
  if (!available(50, 16)) GTEST_SKIP() << "no AVX2 + FMA (or VIT_SIMD=portable)";
  EXPECT_TRUE(available(1, 8));
  EXPECT_TRUE(available(128, 64));
  EXPECT_FALSE(available(129, 16));  // longer sequences: GEMM path
  EXPECT_FALSE(available(50, 12));   // d not a multiple of 8
  EXPECT_FALSE(available(50, 72));   // wider heads
  const AttentionDims dm{2, 50, 3, 16};
  EXPECT_EQ(kernels::attention_probs_floats(dm, {}), 2 * 3 * 50 * 56);  // rows padded to 56
  EXPECT_EQ(kernels::attention_probs_floats(dm, {0.1f, 1}), 2 * 3 * 50 * 50);  // dropout: GEMM path
}

TEST(AttentionHead, MatchesGemmPathForEveryPaddingAndWidth) {
  if (!available(50, 16)) GTEST_SKIP() << "no AVX2 + FMA (or VIT_SIMD=portable)";
  uint64_t key = 700;
  for (int64_t N : {1, 2, 7, 8, 9, 17, 50, 65, 100, 128})
    for (int64_t d : {8, 16, 24, 32, 64}) {
      const AttentionDims dm{2, N, 2, d};
      const Tensor qkv = random_tensor({2, N, 6 * d}, key++, -2.0f, 2.0f);
      const Tensor dout = random_tensor({2, N, 2 * d}, key++);
      const HeadRun ref = run(dm, false, qkv, dout, false);
      for (bool keep : {false, true}) {
        const HeadRun got = run(dm, true, qkv, dout, keep);
        EXPECT_LT(max_abs_diff(got.out, ref.out), 2e-6) << "N " << N << " d " << d;
        if (!keep) {
          EXPECT_LT(max_abs_diff(got.lse, ref.lse), 2e-6) << "N " << N << " d " << d;
        }
        EXPECT_LT(max_abs_diff(got.dqkv, ref.dqkv), 1e-5) << "N " << N << " d " << d << " keep " << keep;
      }
    }
}

TEST(AttentionHead, KeptProbabilitiesArePaddedRowsThatSumToOne) {
  if (!available(50, 16)) GTEST_SKIP() << "no AVX2 + FMA (or VIT_SIMD=portable)";
  const int64_t N = 13, Np = 16, d = 8;
  const AttentionDims dm{1, N, 2, d};
  const Tensor qkv = random_tensor({1, N, 6 * d}, 31, -2.0f, 2.0f);
  const HeadRun r = run(dm, true, qkv, random_tensor({1, N, 2 * d}, 32), true);
  ASSERT_EQ(r.probs.size(), static_cast<size_t>(2 * N * Np));
  for (int64_t row = 0; row < 2 * N; ++row) {
    double sum = 0.0;
    for (int64_t j = 0; j < Np; ++j) {
      const float p = r.probs[row * Np + j];
      if (j >= N) EXPECT_EQ(p, 0.0f) << "padding column " << j;
      else EXPECT_GT(p, 0.0f);
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
}

TEST(AttentionHead, FreshGradientIsStoredAndAccumulatedOtherwise) {
  if (!available(50, 16)) GTEST_SKIP() << "no AVX2 + FMA (or VIT_SIMD=portable)";
  const AttentionDims dm{2, 50, 4, 16};
  const Tensor qkv = random_tensor({2, 50, 192}, 41, -2.0f, 2.0f);
  const Tensor dout = random_tensor({2, 50, 64}, 42);
  for (bool keep : {false, true}) {
    const HeadRun fresh = run(dm, true, qkv, dout, keep, true);
    const HeadRun zero = run(dm, true, qkv, dout, keep, false, 0.0f);
    const HeadRun half = run(dm, true, qkv, dout, keep, false, 0.5f);
    EXPECT_EQ(fresh.dqkv, zero.dqkv);
    for (size_t i = 0; i < half.dqkv.size(); ++i) ASSERT_EQ(half.dqkv[i], 0.5f + zero.dqkv[i]) << i;
  }
}

// Scores of +-40 (exp would overflow without the row-max shift) against a double reference;
// rows so peaked that all but one probability underflow to 0.
TEST(AttentionHead, ExtremeScoresStayFiniteAndExact) {
  if (!available(50, 16)) GTEST_SKIP() << "no AVX2 + FMA (or VIT_SIMD=portable)";
  const int64_t N = 11, d = 16, D = d;
  const AttentionDims dm{1, N, 1, d};
  const Tensor qkv = random_tensor({1, N, 3 * d}, 51, -6.0f, 6.0f);
  const HeadRun r = run(dm, true, qkv, random_tensor({1, N, d}, 52), true);
  for (int64_t i = 0; i < N; ++i) {
    std::vector<double> s(N);
    double mx = -1e300, z = 0.0;
    for (int64_t j = 0; j < N; ++j) {
      double dot = 0.0;
      for (int64_t c = 0; c < d; ++c) dot += double(qkv[i * 3 * D + c]) * qkv[j * 3 * D + D + c];
      mx = std::max(mx, s[j] = dot / 4.0);
    }
    for (int64_t j = 0; j < N; ++j) z += (s[j] = std::exp(s[j] - mx));
    for (int64_t c = 0; c < d; ++c) {
      double o = 0.0;
      for (int64_t j = 0; j < N; ++j) o += s[j] / z * qkv[j * 3 * D + 2 * D + c];
      EXPECT_NEAR(r.out[i * D + c], o, 1e-5) << "row " << i;
    }
  }
  for (float g : r.dqkv) EXPECT_TRUE(std::isfinite(g));
}

TEST(AttentionHead, NanInOneHeadStaysInThatHead) {
  if (!available(50, 16)) GTEST_SKIP() << "no AVX2 + FMA (or VIT_SIMD=portable)";
  const int64_t N = 9, d = 8, D = 2 * d;
  const AttentionDims dm{1, N, 2, d};
  Tensor qkv = random_tensor({1, N, 3 * D}, 61);
  qkv.data()[4 * 3 * D + D + 3] = std::nanf("");  // k row 4 of head 0
  const HeadRun r = run(dm, true, qkv, random_tensor({1, N, D}, 62), true);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t c = 0; c < D; ++c) {
      if (c < d) EXPECT_TRUE(std::isnan(r.out[i * D + c])) << "head 0 row " << i;
      else EXPECT_TRUE(std::isfinite(r.out[i * D + c])) << "head 1 row " << i;
    }
}

TEST(AttentionHead, BitIdenticalForOneTwoAndThreeThreads) {
  if (!available(50, 16)) GTEST_SKIP() << "no AVX2 + FMA (or VIT_SIMD=portable)";
  const AttentionDims dm{5, 50, 4, 16};
  const Tensor qkv = random_tensor({5, 50, 192}, 71, -1.5f, 1.5f);
  const Tensor dout = random_tensor({5, 50, 64}, 72);
  const int saved = num_threads();
  std::vector<HeadRun> runs;
  for (int t : {1, 2, 3}) {
    set_num_threads(t);
    runs.push_back(run(dm, true, qkv, dout, true));
  }
  set_num_threads(saved);
  for (size_t i = 1; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].out, runs[0].out);
    EXPECT_EQ(runs[i].probs, runs[0].probs);
    EXPECT_EQ(runs[i].dqkv, runs[0].dqkv);
  }
}

TEST(AttentionHead, PrefetchingTheNextHeadChangesNoBits) {
  if (!kernels::detail::head_kernel_applies(65, 64)) GTEST_SKIP() << "no AVX2 + FMA";
  const int64_t N = 65, d = 64, ld = 3 * d, Np = kernels::detail::padded_tokens(N);
  std::vector<float> qkv(2 * N * ld);
  for (size_t i = 0; i < qkv.size(); ++i) qkv[i] = std::sin(0.37f * static_cast<float>(i));
  const kernels::detail::HeadOperands x{qkv.data(), qkv.data() + d, qkv.data() + 2 * d, ld, N, d,
                                        0.125f};
  std::vector<float> scratch(kernels::detail::head_scratch_floats(N, d));
  std::vector<float> o0(N * d), o1(N * d), p0(N * Np), p1(N * Np), g0(N * ld), g1(N * ld);
  std::vector<float> dout(N * d, 0.5f);
  kernels::detail::head_forward(x, o0.data(), d, p0.data(), nullptr, scratch.data());
  kernels::detail::head_backward(x, dout.data(), d, p0.data(), g0.data(), g0.data() + d,
                                 g0.data() + 2 * d, ld, true, false, scratch.data());
  for (const float* keep : {p1.data(), static_cast<float*>(nullptr)}) {
    kernels::detail::Trickle next;
    next.add(qkv.data() + N * ld, N, ld, 3 * d);
    kernels::detail::head_forward(x, o1.data(), d, p1.data(), nullptr, scratch.data(), &next);
    EXPECT_EQ(next.pending(), 0);
    kernels::detail::Trickle next_b;
    next_b.add(qkv.data() + N * ld, N, ld, 3 * d);
    kernels::detail::head_backward(x, dout.data(), d, keep, g1.data(), g1.data() + d,
                                   g1.data() + 2 * d, ld, true, false, scratch.data(), &next_b);
    EXPECT_EQ(next_b.pending(), 0);
    EXPECT_EQ(o0, o1);
    EXPECT_EQ(p0, p1);
    EXPECT_EQ(g0, g1);
  }
}
