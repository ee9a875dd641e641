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

// A residual add hands its dout buffer to one op-output input (no copy); the other input gets a
// copy, leaves (parameters) always get buffers of their own, and a later accumulation into the
// adopted buffer gives the right totals.
TEST(Variable, AddHandsItsGradientToOneOpOutputInput) {
  Var x(Tensor::from({3}, {1, 2, 3}), true);
  Var a = scale(x, 2.0f), b = scale(x, 3.0f);
  Var y = add(a, b);
  Var z = mul(y, Var(Tensor::from({3}, {1, 10, 100})));
  Var w = add(z, scale(a, 0.5f));  // a feeds two ops: its gradient is added to after adoption
  backward(sum(w));
  // dz = 1, dy = (1, 10, 100), da = dy + 0.5, db = dy, dx = 2 da + 3 db = 5 dy + 1
  const float dy[] = {1, 10, 100};
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(x.grad()[i], 5 * dy[i] + 1);
    EXPECT_FLOAT_EQ(a.grad()[i], dy[i] + 0.5f);
    EXPECT_FLOAT_EQ(b.grad()[i], dy[i]);
  }
  // a already had a gradient (the later scale's backward ran first), so b took dy
  EXPECT_EQ(b.grad().data(), y.grad().data()) << "b adopted dy";
  EXPECT_NE(a.grad().data(), y.grad().data());
  Var e = scale(x, 1.0f), f = scale(x, 1.0f);
  Var g = add(e, f);
  backward(sum(g));
  EXPECT_EQ(e.grad().data(), g.grad().data()) << "the first fresh input adopts";
  EXPECT_NE(f.grad().data(), g.grad().data()) << "only one input may take dout";

  Var p(Tensor::from({2}, {1, 2}), true), q(Tensor::from({2}, {3, 4}), true);
  Var s = add(p, q);
  backward(sum(s));
  EXPECT_NE(p.grad().data(), s.grad().data()) << "a leaf keeps its own gradient buffer";
  EXPECT_NE(q.grad().data(), s.grad().data());
  backward(sum(add(p, q)));  // and it accumulates across backward() calls
  EXPECT_FLOAT_EQ(p.grad()[0], 2.0f);

  Var c = scale(p, 1.0f);
  Var cc = add(c, c);  // one Var on both sides: dout added twice, never adopted
  backward(sum(cc));
  EXPECT_FLOAT_EQ(c.grad()[1], 2.0f);
  EXPECT_FLOAT_EQ(p.grad()[1], 4.0f);
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
