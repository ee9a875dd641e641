// Fused cross-entropy (kernels and the autograd op) against the composed computation in double:
// softmax, then log, then the timm label-smoothing mix, then the mean over the batch; with and
// without smoothing. Gradient against the analytic double formula of the composed loss.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "kernels/cross_entropy.hpp"

using namespace vit;

namespace {
// Composed reference: p = softmax(z) in double, loss_b = (1-s)(-log p_y) + s mean_c(-log p_c).
// Also returns d(mean loss)/dz from p (the derivative of the composed form).
double composed_loss(const Tensor& z, const std::vector<int32_t>& y, double s, std::vector<double>* grad) {
  const int64_t B = z.size(0), K = z.size(1);
  double total = 0.0;
  if (grad) grad->assign(B * K, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    double m = z[b * K];
    for (int64_t k = 1; k < K; ++k) m = std::max(m, double(z[b * K + k]));
    double sum = 0.0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(z[b * K + k] - m);
    double smooth = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const double p = std::exp(z[b * K + k] - m) / sum;
      smooth += -std::log(p) / K;
      if (grad) (*grad)[b * K + k] = (p - s / K - (k == y[b] ? 1.0 - s : 0.0)) / B;
    }
    const double py = std::exp(z[b * K + y[b]] - m) / sum;
    total += (1.0 - s) * -std::log(py) + s * smooth;
  }
  return total / B;
}

std::vector<int32_t> some_labels(int64_t B, int64_t K) {
  std::vector<int32_t> y(B);
  for (int64_t b = 0; b < B; ++b) y[b] = static_cast<int32_t>((b * 7 + 3) % K);
  return y;
}
}  // namespace

TEST(CrossEntropy, FusedMatchesComposedWithAndWithoutSmoothing) {
  for (float s : {0.0f, 0.1f, 0.5f}) {
    for (auto [B, K] : {std::pair<int64_t, int64_t>{1, 1}, {3, 2}, {5, 10}, {9, 33}, {4, 1000}}) {
      Tensor z = random_tensor({B, K}, 30 + K, -8.0f, 8.0f);
      const auto y = some_labels(B, K);
      std::vector<double> gref;
      const double ref = composed_loss(z, y, s, &gref);
      Var logits(z.clone(), true);
      Var loss = cross_entropy(logits, y, s);
      ASSERT_EQ(loss.shape(), Shape{1});
      EXPECT_NEAR(loss.value()[0], ref, 2e-5 * std::max(1.0, std::fabs(ref))) << "B " << B << " K " << K << " s " << s;
      backward(loss);
      for (int64_t i = 0; i < B * K; ++i)
        ASSERT_NEAR(logits.grad()[i], gref[i], 1e-6) << "B " << B << " K " << K << " s " << s << " i " << i;
    }
  }
}

TEST(CrossEntropy, HugeLogitsStayFinite) {
  Tensor z = Tensor::from({2, 3}, {1000.0f, -1000.0f, 0.0f, 500.0f, 500.0f, 499.0f});
  std::vector<int32_t> y = {1, 2};
  std::vector<float> losses(2), lse(2);
  kernels::cross_entropy_forward(losses.data(), lse.data(), z.data(), y.data(), 2, 3, 0.1f);
  const double ref0 = 0.9 * 2000.0 + 0.1 * (3000.0 / 3.0);  // lse ~ 1000
  EXPECT_NEAR(losses[0], ref0, 1e-2);
  EXPECT_TRUE(std::isfinite(losses[1]));
  EXPECT_NEAR(losses[1], composed_loss(Tensor::from({1, 3}, {500.0f, 500.0f, 499.0f}), {2}, 0.1, nullptr), 1e-4);
}

TEST(CrossEntropy, KernelRowGradientsScaleWithDloss) {
  const int64_t B = 3, K = 7;
  Tensor z = random_tensor({B, K}, 40);
  const auto y = some_labels(B, K);
  std::vector<float> losses(B), lse(B), dz(B * K, 0.0f);
  const std::vector<float> dloss = {1.0f, 0.0f, -2.0f};
  kernels::cross_entropy_forward(losses.data(), lse.data(), z.data(), y.data(), B, K, 0.2f);
  kernels::cross_entropy_backward(dz.data(), z.data(), lse.data(), y.data(), dloss.data(), B, K, 0.2f);
  std::vector<double> gref;
  composed_loss(z, y, 0.2, &gref);  // d(mean)/dz = per-row gradient / B
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < K; ++k)
      EXPECT_NEAR(dz[b * K + k], dloss[b] * gref[b * K + k] * B, 1e-6);
}
