#include <gtest/gtest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"

using namespace vit;

TEST(Variable, BackwardAccumulatesIntoLeaves) {
  Var a(Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6}), true);
  Var b(Tensor::from({3}, {10, 20, 30}), true);
  Var y = sum(add(a, b));
  EXPECT_FLOAT_EQ(y.value()[0], 21 + 120);
  backward(y);
  for (int64_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(a.grad()[i], 1.0f);
  for (int64_t i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(b.grad()[i], 2.0f);
  EXPECT_EQ(tape_size(), 0u);
  backward(sum(add(a, b)));  // gradients accumulate until zeroed
  EXPECT_FLOAT_EQ(b.grad()[0], 4.0f);
  b.zero_grad();
  EXPECT_FLOAT_EQ(b.grad()[0], 0.0f);
}

TEST(Variable, NoGradRecordsNothing) {
  Var a(Tensor::full({4}, 1.0f), true);
  {
    NoGradGuard guard;
    Var y = add(a, a);
    EXPECT_FALSE(y.requires_grad());
  }
  EXPECT_EQ(tape_size(), 0u);
  Var z = add(a, a);
  EXPECT_TRUE(z.requires_grad());
  EXPECT_EQ(tape_size(), 1u);
  clear_tape();
}

TEST(Variable, SharedInputGetsBothContributions) {
  Var a(Tensor::from({2}, {1, 2}), true);
  backward(sum(add(a, a)));
  EXPECT_FLOAT_EQ(a.grad()[0], 2.0f);
}

TEST(Variable, BroadcastShapeMismatchNamesShapes) {
  Var a(Tensor::zeros({2, 3}), true);
  Var b(Tensor::zeros({2}), true);
  try {
    add(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_EQ(e.kind(), ErrorKind::Internal);
  }
}

TEST(Gradcheck, AddWithBroadcastAndOddSizes) {
  for (Shape s : {Shape{1, 1}, Shape{3, 7}, Shape{2, 5, 13}}) {
    Var a(random_tensor(s, 1), true);
    Var b(random_tensor({s.back()}, 2), true);
    auto r = gradcheck([](const std::vector<Var>& in) { return add(in[0], in[1]); }, {a, b});
    EXPECT_TRUE(r.ok) << r.report;
  }
}

TEST(Gradcheck, DetectsAWrongGradient) {
  // A deliberately wrong backward must be caught: the check can fail.
  Var a(random_tensor({5}, 3), true);
  auto wrong = [](const std::vector<Var>& in) {
    Tensor out = in[0].value().clone();
    Var x = in[0];
    return record(out, {x}, [x](const Tensor& dout) {
      for (int64_t i = 0; i < dout.numel(); ++i) x.grad()[i] += 2.0f * dout[i];
    }, "wrong_identity");
  };
  EXPECT_FALSE(gradcheck(wrong, {a}).ok);
}
