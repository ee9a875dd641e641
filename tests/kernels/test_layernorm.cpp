// LayerNorm kernels against a naive double-precision LayerNorm (forward, saved statistics and
// the analytic backward), including rows with a large offset and D = 1.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "kernels/layernorm.hpp"

using namespace vit;

namespace {
struct RefRow {
  double mean, rstd;
};
RefRow ref_stats(const float* x, int64_t D, double eps) {
  double m = 0.0, v = 0.0;
  for (int64_t i = 0; i < D; ++i) m += x[i];
  m /= D;
  for (int64_t i = 0; i < D; ++i) v += (x[i] - m) * (x[i] - m);
  v /= D;
  return {m, 1.0 / std::sqrt(v + eps)};
}
}  // namespace

class LayerNormKernel : public ::testing::TestWithParam<int64_t> {};

TEST_P(LayerNormKernel, ForwardAndBackwardMatchDouble) {
  const int64_t D = GetParam(), R = 11;
  const float eps = 1e-5f;
  Tensor x = random_tensor({R, D}, 10, -2.0f, 2.0f);
  for (int64_t i = 0; i < D; ++i) x[3 * D + i] += 1000.0f;  // a row with a large mean
  Tensor w = random_tensor({D}, 11, 0.5f, 1.5f), b = random_tensor({D}, 12);
  Tensor g = random_tensor({R, D}, 13);
  std::vector<float> out(R * D), mean(R), rstd(R), dx(R * D, 0.0f), dw(D, 0.0f), db(D, 0.0f);
  kernels::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), R, D, eps);
  kernels::layernorm_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), mean.data(),
                              rstd.data(), w.data(), R, D);
  std::vector<double> dw_ref(D, 0.0), db_ref(D, 0.0);
  for (int64_t r = 0; r < R; ++r) {
    const float* xr = x.data() + r * D;
    const RefRow s = ref_stats(xr, D, eps);
    EXPECT_NEAR(mean[r], s.mean, 1e-6 * std::max(1.0, std::fabs(s.mean)));
    EXPECT_NEAR(rstd[r], s.rstd, 1e-4 * s.rstd);
    double a = 0.0, c = 0.0;
    for (int64_t i = 0; i < D; ++i) {
      const double xhat = (xr[i] - s.mean) * s.rstd;
      const double gi = g[r * D + i];
      // the large-mean row loses float bits of x itself: looser there
      const double tol = r == 3 ? 2e-3 : 2e-5;
      EXPECT_NEAR(out[r * D + i], xhat * w[i] + b[i], tol) << "row " << r << " col " << i;
      a += gi * w[i];
      c += gi * w[i] * xhat;
      dw_ref[i] += gi * xhat;
      db_ref[i] += gi;
    }
    a /= D;
    c /= D;
    for (int64_t i = 0; i < D; ++i) {
      const double xhat = (xr[i] - s.mean) * s.rstd;
      const double ref = s.rstd * (g[r * D + i] * w[i] - a - xhat * c);
      EXPECT_NEAR(dx[r * D + i], ref, 1e-4 * std::max(1.0, std::fabs(ref)) * (r == 3 ? 20 : 1));
    }
  }
  for (int64_t i = 0; i < D; ++i) {
    EXPECT_NEAR(dw[i], dw_ref[i], 5e-3);
    EXPECT_NEAR(db[i], db_ref[i], 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Widths, LayerNormKernel, ::testing::Values(1, 7, 13, 33, 192));

TEST(LayerNormKernelNulls, NoAffineAndNoSavedStats) {
  const int64_t R = 4, D = 9;
  Tensor x = random_tensor({R, D}, 14);
  std::vector<float> out(R * D);
  kernels::layernorm_forward(out.data(), nullptr, nullptr, x.data(), nullptr, nullptr, R, D, 1e-6f);
  for (int64_t r = 0; r < R; ++r) {
    const RefRow s = ref_stats(x.data() + r * D, D, 1e-6);
    for (int64_t i = 0; i < D; ++i)
      EXPECT_NEAR(out[r * D + i], (x[r * D + i] - s.mean) * s.rstd, 1e-5);
  }
}
