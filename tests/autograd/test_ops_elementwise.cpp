// Gradchecks for the elementwise ops (mul with broadcast, scale, gelu, sum, mean) on odd shapes,
// plus broadcast shape errors for mul.
#include <gtest/gtest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"

using namespace vit;

namespace {
const std::vector<Shape> kShapes = {Shape{1}, Shape{7}, Shape{3, 13}, Shape{2, 5, 33}, Shape{4, 1}};

void expect_grad_ok(const GradFn& f, const std::vector<Var>& in, GradcheckOptions opt = {}) {
  const GradcheckResult r = gradcheck(f, in, opt);
  EXPECT_TRUE(r.ok) << r.report;
}
}  // namespace

TEST(OpsElementwise, MulSameShapeAndSuffixBroadcast) {
  for (const Shape& s : kShapes) {
    Var a(random_tensor(s, 1), true), same(random_tensor(s, 2), true);
    expect_grad_ok([](const std::vector<Var>& in) { return mul(in[0], in[1]); }, {a, same});
    Var bias(random_tensor({s.back()}, 3), true);
    expect_grad_ok([](const std::vector<Var>& in) { return mul(in[0], in[1]); }, {a, bias});
  }
  // [1, N, D] over [B, N, D] (leading 1s dropped)
  Var x(random_tensor({3, 5, 7}, 4), true), p(random_tensor({1, 5, 7}, 5), true);
  expect_grad_ok([](const std::vector<Var>& in) { return mul(in[0], in[1]); }, {x, p});
  // the same Var on both sides: d(a*a)/da = 2a
  Var a(random_tensor({13}, 6), true);
  expect_grad_ok([](const std::vector<Var>& in) { return mul(in[0], in[0]); }, {a});
}

TEST(OpsElementwise, MulForwardAndShapeError) {
  Var a(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6})), b(Tensor::from({3}, {10, 20, 30}));
  Var y = mul(a, b);
  const float expected[] = {10, 40, 90, 40, 100, 180};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y.value()[i], expected[i]);
  EXPECT_THROW(mul(a, Var(Tensor::zeros({2}))), Error);
  EXPECT_THROW(mul(b, a), Error);  // b cannot be the bigger operand
}

TEST(OpsElementwise, ScaleGeluSumMean) {
  for (const Shape& s : kShapes) {
    Var x(random_tensor(s, 7, -3.0f, 3.0f), true);
    expect_grad_ok([](const std::vector<Var>& in) { return scale(in[0], -0.75f); }, {x});
    expect_grad_ok([](const std::vector<Var>& in) { return gelu(in[0]); }, {x});
    expect_grad_ok([](const std::vector<Var>& in) { return sum(in[0]); }, {x});
    expect_grad_ok([](const std::vector<Var>& in) { return mean(in[0]); }, {x});
  }
}

TEST(OpsElementwise, GradientsOnlyForInputsThatNeedThem) {
  Var a(random_tensor({3, 7}, 8), true), b(random_tensor({7}, 9), false);
  backward(sum(mul(a, b)));
  EXPECT_FALSE(b.has_grad());
  for (int64_t i = 0; i < 21; ++i) EXPECT_FLOAT_EQ(a.grad()[i], b.value()[i % 7]);
}
