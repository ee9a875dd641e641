// Gradchecks and forward checks for layer_norm and softmax on odd widths, plus shape errors.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"

using namespace vit;

TEST(OpsNorm, LayerNormGradcheck) {
  for (const Shape& s : {Shape{1, 1}, Shape{3, 7}, Shape{2, 3, 13}, Shape{4, 33}, Shape{2, 64}}) {
    const int64_t D = s.back();
    Var x(random_tensor(s, 1, -2.0f, 2.0f), true);
    Var w(random_tensor({D}, 2, 0.5f, 1.5f), true), b(random_tensor({D}, 3), true);
    const GradcheckResult r = gradcheck(
        [](const std::vector<Var>& in) { return layer_norm(in[0], in[1], in[2], 1e-5f); }, {x, w, b});
    EXPECT_TRUE(r.ok) << "shape " << ::testing::PrintToString(s) << "\n" << r.report;
  }
}

TEST(OpsNorm, LayerNormWithoutAffine) {
  Var x(random_tensor({5, 13}, 4, -2.0f, 2.0f), true);
  const GradcheckResult r = gradcheck(
      [](const std::vector<Var>& in) { return layer_norm(in[0], Var(), Var(), 1e-5f); }, {x});
  EXPECT_TRUE(r.ok) << r.report;
  Var y = layer_norm(x, Var(), Var(), 1e-6f);
  for (int64_t row = 0; row < 5; ++row) {  // rows have mean 0 and variance ~1
    double m = 0, v = 0;
    for (int64_t i = 0; i < 13; ++i) m += y.value()[row * 13 + i];
    for (int64_t i = 0; i < 13; ++i) v += std::pow(y.value()[row * 13 + i] - m / 13, 2);
    EXPECT_NEAR(m / 13, 0.0, 1e-6);
    EXPECT_NEAR(v / 13, 1.0, 1e-4);
  }
  clear_tape();
}

TEST(OpsNorm, LayerNormShapeErrors) {
  Var x(Tensor::zeros({2, 7}));
  EXPECT_THROW(layer_norm(x, Var(Tensor::zeros({6})), Var(Tensor::zeros({7}))), Error);
  EXPECT_THROW(layer_norm(x, Var(Tensor::zeros({7})), Var(Tensor::zeros({1, 7}))), Error);
}

TEST(OpsNorm, SoftmaxGradcheckAndRows) {
  for (const Shape& s : {Shape{1, 1}, Shape{3, 7}, Shape{2, 3, 13}, Shape{4, 33}}) {
    Var x(random_tensor(s, 5, -3.0f, 3.0f), true);
    const GradcheckResult r = gradcheck([](const std::vector<Var>& in) { return softmax(in[0]); }, {x});
    EXPECT_TRUE(r.ok) << "shape " << ::testing::PrintToString(s) << "\n" << r.report;
    Var y = softmax(x);
    const int64_t K = s.back();
    for (int64_t row = 0; row < x.numel() / K; ++row) {
      double total = 0;
      for (int64_t k = 0; k < K; ++k) total += y.value()[row * K + k];
      EXPECT_NEAR(total, 1.0, 1e-6);
    }
    clear_tape();
  }
}
