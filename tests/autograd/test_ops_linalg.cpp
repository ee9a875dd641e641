// Gradchecks for matmul, bmm (all transpose combinations), linear (with/without bias, 3-D input),
// linear_gelu, linear_residual and mlp_residual; forward values against naive loops; linear_gelu
// against an erf-based GELU of linear; the fused ops bitwise against their compositions; shape
// errors.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"

using namespace vit;

namespace {

Var param(const Shape& s, uint64_t key) { return Var(random_tensor(s, key), true); }

TEST(OpsLinalg, MatmulForwardMatchesNaiveLoop) {
  Var a = param({5, 7}, 1), b = param({7, 3}, 2);
  Var y = matmul(a, b);
  ASSERT_EQ(y.shape(), (Shape{5, 3}));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      double s = 0;
      for (int64_t p = 0; p < 7; ++p) s += double(a.value()[i * 7 + p]) * b.value()[p * 3 + j];
      EXPECT_NEAR(y.value()[i * 3 + j], s, 1e-5);
    }
  clear_tape();
}

TEST(OpsLinalg, MatmulGradcheck) {
  for (Shape sa : {Shape{1, 1}, Shape{4, 6}, Shape{13, 17}, Shape{1, 9}}) {
    Var a = param(sa, 3), b = param({sa[1], 5}, 4);
    auto r = gradcheck([](const std::vector<Var>& in) { return matmul(in[0], in[1]); }, {a, b});
    EXPECT_TRUE(r.ok) << r.report;
  }
}

TEST(OpsLinalg, BmmGradcheckAllTransposes) {
  const int64_t B = 3, M = 4, K = 5, N = 6;
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    Var a = param(ta ? Shape{B, K, M} : Shape{B, M, K}, 10 + t);
    Var b = param(tb ? Shape{B, N, K} : Shape{B, K, N}, 20 + t);
    Var y = bmm(a, b, ta, tb);
    ASSERT_EQ(y.shape(), (Shape{B, M, N}));
    // Forward against a naive loop.
    for (int64_t s = 0; s < B; ++s)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double acc = 0;
          for (int64_t p = 0; p < K; ++p) {
            const float av = ta ? a.value()[(s * K + p) * M + i] : a.value()[(s * M + i) * K + p];
            const float bv = tb ? b.value()[(s * N + j) * K + p] : b.value()[(s * K + p) * N + j];
            acc += double(av) * bv;
          }
          EXPECT_NEAR(y.value()[(s * M + i) * N + j], acc, 1e-5);
        }
    clear_tape();
    auto r = gradcheck(
        [ta, tb](const std::vector<Var>& in) { return bmm(in[0], in[1], ta, tb); }, {a, b});
    EXPECT_TRUE(r.ok) << "trans_a " << ta << " trans_b " << tb << "\n" << r.report;
  }
}

TEST(OpsLinalg, LinearGradcheckWithAndWithoutBias) {
  for (Shape sx : {Shape{1, 3}, Shape{7, 5}, Shape{2, 6, 5}}) {
    const int64_t in = sx.back(), out = 4;
    Var x = param(sx, 30), w = param({out, in}, 31), b = param({out}, 32);
    Var y = linear(x, w, b);
    Shape expect = sx;
    expect.back() = out;
    EXPECT_EQ(y.shape(), expect);
    clear_tape();
    auto with_bias = gradcheck(
        [](const std::vector<Var>& v) { return linear(v[0], v[1], v[2]); }, {x, w, b});
    EXPECT_TRUE(with_bias.ok) << with_bias.report;
    auto no_bias =
        gradcheck([](const std::vector<Var>& v) { return linear(v[0], v[1], Var()); }, {x, w});
    EXPECT_TRUE(no_bias.ok) << no_bias.report;
  }
}

TEST(OpsLinalg, LinearGeluGradcheck) {
  for (Shape sx : {Shape{3, 5}, Shape{2, 7, 4}}) {
    Var x = param(sx, 40), w = param({6, sx.back()}, 41), b = param({6}, 42);
    auto r = gradcheck(
        [](const std::vector<Var>& v) { return linear_gelu(v[0], v[1], v[2]); }, {x, w, b});
    EXPECT_TRUE(r.ok) << r.report;
    auto nb = gradcheck(
        [](const std::vector<Var>& v) { return linear_gelu(v[0], v[1], Var()); }, {x, w});
    EXPECT_TRUE(nb.ok) << nb.report;
  }
}

TEST(OpsLinalg, LinearGeluEqualsGeluOfLinear) {
  // Shapes past one register tile and one K block.
  Var x = Var(random_tensor({3, 70, 300}, 50, -2.0f, 2.0f)), w = param({37, 300}, 51),
      b = param({37}, 52);
  Var fused = linear_gelu(x, w, b);
  Var plain = linear(x, w, b);
  ASSERT_EQ(fused.shape(), plain.shape());
  for (int64_t i = 0; i < plain.numel(); ++i) {
    const double h = plain.value()[i];
    const double g = 0.5 * h * (1.0 + std::erf(h / std::sqrt(2.0)));
    ASSERT_NEAR(fused.value()[i], g, 1e-5 * (1.0 + std::abs(g))) << i;
  }
  clear_tape();
}

TEST(OpsLinalg, LinearResidualGradcheck) {
  for (Shape sx : {Shape{3, 5}, Shape{2, 7, 4}}) {
    Shape sy = sx;
    sy.back() = 6;
    Var x = param(sx, 70), w = param({6, sx.back()}, 71), b = param({6}, 72), r = param(sy, 73);
    auto res = gradcheck(
        [](const std::vector<Var>& v) { return linear_residual(v[0], v[1], v[2], v[3]); },
        {x, w, b, r});
    EXPECT_TRUE(res.ok) << res.report;
  }
  // The residual the same Var as the input (y = x + x w^T + b): both gradients accumulate.
  Var x = param({4, 5}, 74), w = param({5, 5}, 75), b = param({5}, 76);
  auto same = gradcheck(
      [](const std::vector<Var>& v) { return linear_residual(v[0], v[1], v[2], v[0]); }, {x, w, b});
  EXPECT_TRUE(same.ok) << same.report;
}

TEST(OpsLinalg, LinearResidualEqualsAddOfLinearBitwise) {
  // Past one register tile and one K block; the residual an op output (its gradient adopted).
  Var x = param({3, 70, 300}, 80), w = param({37, 300}, 81), b = param({37}, 82);
  Var r0 = param({3, 70, 37}, 83);
  std::vector<std::vector<float>> values, grads;
  for (bool fused : {false, true}) {
    for (const Var& p : {x, w, b, r0}) p.zero_grad();
    Var r = scale(r0, 1.5f);
    Var y = fused ? linear_residual(x, w, b, r) : add(r, linear(x, w, b));
    values.push_back(y.value().to_vector());
    backward(sum(mul(y, y)));
    for (const Var& p : {x, w, b, r0}) grads.push_back(p.grad().to_vector());
  }
  EXPECT_EQ(values[0], values[1]);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(grads[i], grads[i + 4]) << "input " << i;
  clear_tape();
}

TEST(OpsLinalg, MlpResidualGradcheck) {
  for (Shape sx : {Shape{3, 5}, Shape{2, 7, 4}}) {
    Shape sz = sx;
    sz.back() = 3;
    Var x = param(sx, 90), w1 = param({6, sx.back()}, 91), b1 = param({6}, 92),
        w2 = param({3, 6}, 93), b2 = param({3}, 94), r = param(sz, 95);
    auto res = gradcheck([](const std::vector<Var>& v) {
      return mlp_residual(v[0], v[1], v[2], v[3], v[4], v[5]);
    }, {x, w1, b1, w2, b2, r});
    EXPECT_TRUE(res.ok) << res.report;
    auto nb = gradcheck([](const std::vector<Var>& v) {
      return mlp_residual(v[0], v[1], Var(), v[2], Var(), v[3]);
    }, {x, w1, w2, r});
    EXPECT_TRUE(nb.ok) << nb.report;
  }
}

TEST(OpsLinalg, MlpResidualEqualsComposedOpsBitwise) {
  // Past one register tile and one K block on both products; the residual an op output (its
  // gradient adopted), then the same Var as the input (both gradients accumulate).
  Var x0 = param({3, 70, 300}, 100), w1 = param({260, 300}, 101), b1 = param({260}, 102),
      w2 = param({300, 260}, 103), b2 = param({300}, 104);
  const std::vector<Var> params{x0, w1, b1, w2, b2};
  for (bool same : {false, true}) {
    std::vector<std::vector<float>> values, grads;
    for (bool fused : {false, true}) {
      for (const Var& p : params) p.zero_grad();
      Var x = scale(x0, 0.5f);
      Var r = same ? x : scale(x0, 1.5f);
      Var y = fused ? mlp_residual(x, w1, b1, w2, b2, r)
                    : linear_residual(linear_gelu(x, w1, b1), w2, b2, r);
      values.push_back(y.value().to_vector());
      backward(sum(mul(y, y)));
      for (const Var& p : params) grads.push_back(p.grad().to_vector());
    }
    EXPECT_EQ(values[0], values[1]) << "same " << same;
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_EQ(grads[i], grads[i + params.size()]) << "input " << i << " same " << same;
  }
  clear_tape();
}

TEST(OpsLinalg, ShapeErrorsNameShapes) {
  Var a = param({2, 3}, 60), b = param({4, 5}, 61);
  EXPECT_THROW(matmul(a, b), Error);
  EXPECT_THROW(linear(a, b, Var()), Error);
  EXPECT_THROW(linear(a, param({5, 3}, 62), param({4}, 63)), Error);
  EXPECT_THROW(bmm(param({2, 3, 4}, 64), param({3, 4, 5}, 65)), Error);
  // mlp_residual: w2's in-features must be w1's out-features; the residual the output's shape
  Var x = param({2, 3}, 66), w1 = param({4, 3}, 67), w2 = param({3, 4}, 68);
  EXPECT_THROW(mlp_residual(x, w1, Var(), param({3, 5}, 69), Var(), param({2, 3}, 70)), Error);
  EXPECT_THROW(mlp_residual(x, w1, Var(), w2, param({4}, 71), param({2, 3}, 72)), Error);
  EXPECT_THROW(mlp_residual(x, w1, Var(), w2, Var(), param({2, 4}, 73)), Error);
  try {
    matmul(a, b);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 5]"), std::string::npos) << e.what();
  }
  clear_tape();
}

}  // namespace
