// Tiled softmax attention kernels against an explicit double-precision softmax(QK^T/sqrt d)V,
// the dropout mask read back through one-hot values, and 1- vs 2-thread bit-identity.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "core/parallel.hpp"
#include "kernels/attention.hpp"

using namespace vit;
using kernels::AttentionDims;
using kernels::AttentionDropout;

namespace {

// Explicit reference: per (b, h) the full N x N probability matrix in double.
// Returns out [B, N, D]; probs (if given) gets P [B, H, N, N].
std::vector<double> naive_attention(const Tensor& qkv, const AttentionDims& dm,
                                    std::vector<double>* probs = nullptr) {
  const int64_t B = dm.batch, N = dm.tokens, H = dm.heads, d = dm.head_dim, D = H * d;
  std::vector<double> out(static_cast<size_t>(B * N * D), 0.0);
  if (probs) probs->assign(static_cast<size_t>(B * H * N * N), 0.0);
  auto at = [&](int64_t b, int64_t n, int64_t col) { return static_cast<double>(qkv[(b * N + n) * 3 * D + col]); };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) {
        std::vector<double> s(static_cast<size_t>(N));
        double mx = -1e300;
        for (int64_t j = 0; j < N; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < d; ++c) dot += at(b, i, h * d + c) * at(b, j, D + h * d + c);
          s[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        double z = 0.0;
        for (int64_t j = 0; j < N; ++j) z += (s[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j < N; ++j) {
          const double p = s[j] / z;
          if (probs) (*probs)[((b * H + h) * N + i) * N + j] = p;
          for (int64_t c = 0; c < d; ++c) out[(b * N + i) * D + h * d + c] += p * at(b, j, 2 * D + h * d + c);
        }
      }
  return out;
}

Tensor random_qkv(const AttentionDims& dm, uint64_t key, float range) {
  return random_tensor({dm.batch, dm.tokens, 3 * dm.heads * dm.head_dim}, key, -range, range);
}

}  // namespace

TEST(AttentionKernel, ForwardMatchesNaiveDoubleReference) {
  uint64_t key = 1;
  for (int64_t N : {1, 7, 65, 130})
    for (int64_t H : {1, 2, 3, 4})
      for (int64_t d : {8, 13, 16}) {
        const AttentionDims dm{2, N, H, d};
        // Range 2 makes q.k/sqrt(d) spread over several units: peaked, non-uniform softmax rows.
        const Tensor qkv = random_qkv(dm, key++, 2.0f);
        Tensor out = Tensor::empty({2, N, H * d});
        Tensor lse = Tensor::empty({2, H, N});
        kernels::attention_forward(out.data(), lse.data(), qkv.data(), dm, {});
        const std::vector<double> ref = naive_attention(qkv, dm);
        double max_err = 0.0;
        for (int64_t i = 0; i < out.numel(); ++i) max_err = std::max(max_err, std::fabs(out[i] - ref[i]));
        EXPECT_LT(max_err, 2e-5) << "N " << N << " H " << H << " d " << d;
      }
}

TEST(AttentionKernel, LogSumExpMatchesReference) {
  const AttentionDims dm{1, 70, 2, 5};
  const Tensor qkv = random_qkv(dm, 11, 2.0f);
  Tensor out = Tensor::empty({1, 70, 10});
  Tensor lse = Tensor::empty({1, 2, 70});
  kernels::attention_forward(out.data(), lse.data(), qkv.data(), dm, {});
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 70; ++i) {
      double z = 0.0;
      for (int64_t j = 0; j < 70; ++j) {
        double dot = 0.0;
        for (int64_t c = 0; c < 5; ++c) dot += double(qkv[i * 30 + h * 5 + c]) * qkv[j * 30 + 10 + h * 5 + c];
        z += std::exp(dot / std::sqrt(5.0));
      }
      EXPECT_NEAR(lse[h * 70 + i], std::log(z), 1e-5);
    }
}

// With v_j = one-hot(j) (d >= N), out[i, j] = P_ij * mask_ij / (1 - p): the mask can be read off.
TEST(AttentionKernel, DropoutMaskIsBernoulliAndScaled) {
  const int64_t N = 40, d = 40;
  const float p = 0.3f;
  const AttentionDims dm{1, N, 1, d};
  Tensor qkv = random_qkv(dm, 5, 1.0f);
  for (int64_t j = 0; j < N; ++j)
    for (int64_t c = 0; c < d; ++c) qkv[j * 3 * d + 2 * d + c] = c == j ? 1.0f : 0.0f;
  std::vector<double> probs;
  naive_attention(qkv, dm, &probs);
  Tensor out = Tensor::empty({1, N, d});
  Tensor lse = Tensor::empty({1, 1, N});
  kernels::attention_forward(out.data(), lse.data(), qkv.data(), dm, {p, 1234});
  int64_t dropped = 0;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const double o = out[i * d + j];
      if (o == 0.0) {
        ++dropped;
      } else {
        EXPECT_NEAR(o, probs[i * N + j] / (1.0 - p), 1e-6) << i << "," << j;
      }
    }
  const double frac = static_cast<double>(dropped) / (N * N);
  EXPECT_NEAR(frac, p, 0.05);  // 1600 Bernoulli(0.3) draws: sd 0.011

  // Another key gives another mask; the same key the same output.
  Tensor out2 = Tensor::empty({1, N, d});
  kernels::attention_forward(out2.data(), lse.data(), qkv.data(), dm, {p, 1235});
  int64_t differ = 0;
  for (int64_t i = 0; i < out.numel(); ++i) differ += out[i] != out2[i];
  EXPECT_GT(differ, 100);
  kernels::attention_forward(out2.data(), lse.data(), qkv.data(), dm, {p, 1234});
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(out[i], out2[i]);
}

TEST(AttentionKernel, BitIdenticalForOneAndTwoThreads) {
  for (float p : {0.0f, 0.2f}) {
    // B*H = 3 (odd, so threads get unequal shares) and N = 130 (partial tiles).
    const AttentionDims dm{1, 130, 3, 16};
    const int64_t D = 48;
    const Tensor qkv = random_qkv(dm, 21, 1.5f);
    const Tensor dout = random_tensor({1, 130, D}, 22);
    std::vector<std::vector<float>> outs, grads;
    const int saved_threads = num_threads();
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Tensor out = Tensor::empty({1, 130, D});
      Tensor lse = Tensor::empty({1, 3, 130});
      kernels::attention_forward(out.data(), lse.data(), qkv.data(), dm, {p, 9});
      Tensor dqkv = Tensor::zeros(qkv.shape());
      kernels::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), dm,
                                  {p, 9});
      outs.push_back(out.to_vector());
      grads.push_back(dqkv.to_vector());
    }
    set_num_threads(saved_threads);
    EXPECT_EQ(outs[0], outs[1]);
    EXPECT_EQ(grads[0], grads[1]);
  }
}
