// Elementwise and activation kernels against naive double-precision references: mul with the
// suffix broadcast, scale, exact GELU and its derivative, sums, and the fixed-order lane_sum.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "core/parallel.hpp"
#include "kernels/activation.hpp"
#include "kernels/elementwise.hpp"

using namespace vit;

namespace {
double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_grad_ref(double x) {
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}
}  // namespace

TEST(ElementwiseKernels, MulForwardAndBackwardMatchDouble) {
  for (int64_t inner : {1, 7, 13, 33}) {
    const int64_t outer = 5;
    Tensor a = random_tensor({outer, inner}, 1), b = random_tensor({inner}, 2);
    Tensor g = random_tensor({outer, inner}, 3);
    std::vector<float> out(outer * inner), da(outer * inner, 0.5f), db(inner, -0.25f);
    kernels::mul_forward(out.data(), a.data(), b.data(), outer, inner);
    kernels::mul_backward(da.data(), db.data(), g.data(), a.data(), b.data(), outer, inner);
    for (int64_t i = 0; i < inner; ++i) {
      double dbi = -0.25;
      for (int64_t o = 0; o < outer; ++o) {
        const int64_t k = o * inner + i;
        EXPECT_NEAR(out[k], double(a[k]) * b[i], 1e-6);
        EXPECT_NEAR(da[k], 0.5 + double(g[k]) * b[i], 1e-6);  // accumulates onto 0.5
        dbi += double(g[k]) * a[k];
      }
      EXPECT_NEAR(db[i], dbi, 1e-5);
    }
  }
}

TEST(ElementwiseKernels, GeluIsExactErfForm) {
  for (float x : {-6.0f, -3.0f, -1.0f, -0.3f, 0.0f, 0.1f, 0.7f, 1.0f, 2.5f, 8.0f}) {
    EXPECT_NEAR(kernels::gelu_value(x), gelu_ref(x), 1e-6 * std::max(1.0, std::fabs(double(x))));
    EXPECT_NEAR(kernels::gelu_derivative(x), gelu_grad_ref(x), 1e-6);
  }
  // The tanh approximation differs by ~1e-4 near |x| = 2: make sure we are not it.
  const double tanh_approx = 0.5 * 2.0 * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (2.0 + 0.044715 * 8.0)));
  EXPECT_GT(std::fabs(tanh_approx - gelu_ref(2.0)), 1e-5);
  EXPECT_NEAR(kernels::gelu_value(2.0f), gelu_ref(2.0), 1e-6);
}

TEST(ElementwiseKernels, GeluBuffersAccumulate) {
  const int64_t n = 10007;  // odd, larger than one thread block
  Tensor x = random_tensor({n}, 4, -4.0f, 4.0f), g = random_tensor({n}, 5);
  std::vector<float> y(n), dx(n, 1.0f);
  kernels::gelu_forward(y.data(), x.data(), n);
  kernels::gelu_backward(dx.data(), g.data(), x.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(y[i], gelu_ref(x[i]), 2e-6);
    ASSERT_NEAR(dx[i], 1.0 + g[i] * gelu_grad_ref(x[i]), 2e-6);
  }
}

// The GELU loops run whole groups of vectors and a tail per thread block; blocks move with the
// thread count, so vector and tail must give the same bits: checked over 1, 2, 3 and 5 threads
// with values at every branch (erf's clamp at |x / sqrt 2| = 4, exp's underflow past
// |x| = 13.1, zeros, denormals, infinities, NaN). Also against the double reference.
TEST(ElementwiseKernels, GeluWithSlopeSameBitsForAnyThreadCount) {
  const int64_t n = 5 * 16384 + 37;
  Tensor x = random_tensor({n}, 8, -7.0f, 7.0f);
  const float special[] = {0.0f, -0.0f, 5.656854f, -5.656855f, 13.2f, -13.2f, 1e-40f, -1e-40f,
                           INFINITY, -INFINITY, NAN, 100.0f, -100.0f};
  for (int64_t i = 0; i < n; i += 997) x.data()[i] = special[(i / 997) % 13];
  const int saved = num_threads();
  std::vector<std::vector<float>> outs, slopes;
  for (int t : {1, 2, 3, 5}) {
    set_num_threads(t);
    std::vector<float> y(n), s(n), y_eval(n);
    kernels::gelu_forward_with_slope(y.data(), s.data(), x.data(), n);
    kernels::gelu_forward(y_eval.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(std::memcmp(&y[i], &y_eval[i], 4), 0) << i;
    outs.push_back(y), slopes.push_back(s);
  }
  set_num_threads(saved);
  for (size_t r = 1; r < outs.size(); ++r)
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::memcmp(&outs[r][i], &outs[0][i], 4), 0) << "threads run " << r << " at " << i;
      ASSERT_EQ(std::memcmp(&slopes[r][i], &slopes[0][i], 4), 0) << "threads run " << r << " at " << i;
    }
  for (int64_t i = 0; i < n; ++i) {
    const float xi = x[i];
    if (std::isnan(xi) || xi == -INFINITY) {
      EXPECT_TRUE(std::isnan(outs[0][i])) << xi;  // x * Phi(x) = -inf * 0
      continue;
    }
    if (std::isinf(xi)) continue;
    ASSERT_NEAR(outs[0][i], gelu_ref(xi), 2e-6 * std::max(1.0f, std::fabs(xi))) << xi;
    ASSERT_NEAR(slopes[0][i], gelu_grad_ref(xi), 2e-6) << xi;
  }
}

// The fused GELU backward + bias gradient gives exactly what the two passes give.
TEST(ElementwiseKernels, GeluBackwardWithBiasMatchesTwoPasses) {
  for (int64_t rows : {3, 200}) {  // below and above column_sums' parallel threshold
    const int64_t cols = 37;
    Tensor dy = random_tensor({rows, cols}, 9), slope = random_tensor({rows, cols}, 10);
    std::vector<float> dx(rows * cols), dx2(rows * cols), db(cols, 0.25f), db2(cols, 0.25f);
    kernels::gelu_backward_saved_bias(dx.data(), db.data(), dy.data(), slope.data(), rows, cols);
    kernels::gelu_backward_saved(dx2.data(), dy.data(), slope.data(), rows * cols);
    kernels::column_sums(db2.data(), dx2.data(), rows, cols);
    EXPECT_EQ(dx, dx2);
    EXPECT_EQ(db, db2);
    double ref = 0.25;
    for (int64_t r = 0; r < rows; ++r) ref += double(dy[r * cols]) * slope[r * cols];
    EXPECT_NEAR(db[0], ref, 1e-4);
  }
}

TEST(ElementwiseKernels, ScaleAndFill) {
  const int64_t n = 33;
  Tensor x = random_tensor({n}, 6);
  std::vector<float> y(n), dx(n, 2.0f);
  kernels::scale_forward(y.data(), x.data(), -1.5f, n);
  kernels::scale_accumulate(dx.data(), x.data(), 0.5f, n);
  kernels::fill_accumulate(dx.data(), 0.25f, n);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_FLOAT_EQ(y[i], -1.5f * x[i]);
    EXPECT_NEAR(dx[i], 2.25 + 0.5 * x[i], 1e-6);
  }
}

TEST(ElementwiseKernels, LaneSumMatchesDoubleAndIsOrderFixed) {
  for (int64_t n : {0, 1, 7, 8, 13, 33, 1000}) {
    Tensor x = random_tensor({std::max<int64_t>(n, 1)}, 7);
    double ref = 0.0;
    for (int64_t i = 0; i < n; ++i) ref += x[i];
    const float s = kernels::lane_sum(n, [&](int64_t i) { return x[i]; });
    EXPECT_NEAR(s, ref, 1e-5 * std::max<int64_t>(1, n));
    EXPECT_EQ(s, kernels::lane_sum(n, [&](int64_t i) { return x[i]; }));
  }
}

TEST(ElementwiseOps, MeanAndSumForward) {
  Tensor t = random_tensor({3, 7, 13}, 8);
  double ref = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) ref += t[i];
  Var x(t);
  EXPECT_NEAR(sum(x).value()[0], ref, 1e-5);
  EXPECT_NEAR(mean(x).value()[0], ref / t.numel(), 1e-7);
  EXPECT_EQ(mean(x).shape(), Shape{1});
}

// Training's GELU pass: the same values as gelu_forward, and the slope its backward multiplies
// by against a central difference of exact GELU (odd length: vector body and tail).
TEST(Gelu, ForwardWithSlopeMatchesForwardAndDerivative) {
  const int64_t n = 1037;
  std::vector<float> x(n), y(n), y_ref(n), slope(n);
  for (int64_t i = 0; i < n; ++i) x[i] = -6.0f + 12.0f * static_cast<float>(i) / (n - 1);
  kernels::gelu_forward(y_ref.data(), x.data(), n);
  kernels::gelu_forward_with_slope(y.data(), slope.data(), x.data(), n);
  auto g = [](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); };
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(y[i], y_ref[i], 1e-6 * (1.0 + std::fabs(y_ref[i]))) << x[i];
    const double d = (g(x[i] + 1e-5) - g(x[i] - 1e-5)) / 2e-5;
    ASSERT_NEAR(slope[i], d, 2e-5) << x[i];
  }
  std::vector<float> dout(n, 3.0f), dx(n);
  kernels::gelu_backward_saved(dx.data(), dout.data(), slope.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(dx[i], 3.0f * slope[i]);
}
