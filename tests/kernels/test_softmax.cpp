// Softmax kernels against a naive double-precision softmax, including rows with huge logits
// (max subtraction must prevent overflow) and K = 1.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "kernels/softmax.hpp"

using namespace vit;

TEST(SoftmaxKernel, ForwardAndBackwardMatchDouble) {
  for (int64_t K : {1, 7, 13, 33, 100}) {
    const int64_t R = 6;
    Tensor x = random_tensor({R, K}, 20, -5.0f, 5.0f);
    for (int64_t k = 0; k < K; ++k) x[2 * K + k] += 1000.0f;  // would overflow without max subtraction
    Tensor g = random_tensor({R, K}, 21);
    std::vector<float> y(R * K), dx(R * K, 0.0f);
    kernels::softmax_forward(y.data(), x.data(), R, K);
    kernels::softmax_backward(dx.data(), g.data(), y.data(), R, K);
    for (int64_t r = 0; r < R; ++r) {
      const float* xr = x.data() + r * K;
      double m = xr[0];
      for (int64_t k = 1; k < K; ++k) m = std::max(m, double(xr[k]));
      double z = 0.0;
      for (int64_t k = 0; k < K; ++k) z += std::exp(xr[k] - m);
      std::vector<double> p(K);
      double dot = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        p[k] = std::exp(xr[k] - m) / z;
        dot += p[k] * g[r * K + k];
      }
      for (int64_t k = 0; k < K; ++k) {
        ASSERT_TRUE(std::isfinite(y[r * K + k]));
        EXPECT_NEAR(y[r * K + k], p[k], 1e-6 + 1e-5 * p[k]) << "K " << K << " row " << r;
        EXPECT_NEAR(dx[r * K + k], p[k] * (g[r * K + k] - dot), 2e-6) << "K " << K << " row " << r;
      }
    }
  }
}
