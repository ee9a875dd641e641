// Shape ops: forward against index-by-index references, gradchecks on odd sizes, and patchify
// checked against a naive stride-P convolution with a Conv2d-layout weight [D, C, P, P].
#include <gtest/gtest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"

using namespace vit;

namespace {
void expect_grad_ok(const GradFn& f, const std::vector<Var>& in) {
  const GradcheckResult r = gradcheck(f, in);
  EXPECT_TRUE(r.ok) << r.report;
}
}  // namespace

TEST(OpsShape, ReshapeSharesValuesAndInfersAxis) {
  Var x(random_tensor({2, 3, 7}, 1), true);
  Var y = reshape(x, {6, -1});
  EXPECT_EQ(y.shape(), (Shape{6, 7}));
  for (int64_t i = 0; i < 42; ++i) EXPECT_EQ(y.value()[i], x.value()[i]);
  EXPECT_THROW(reshape(x, {5, 7}), Error);
  EXPECT_THROW(reshape(x, {-1, -1}), Error);
  clear_tape();
  expect_grad_ok([](const std::vector<Var>& in) { return reshape(in[0], {7, 6}); }, {x});
}

TEST(OpsShape, Permute0213) {
  const int64_t A = 2, B = 3, C = 5, E = 7;
  Var x(random_tensor({A, B, C, E}, 2), true);
  Var y = permute_0213(x);
  EXPECT_EQ(y.shape(), (Shape{A, C, B, E}));
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t e = 0; e < E; ++e)
          ASSERT_EQ(y.value()[((a * C + c) * B + b) * E + e], x.value()[((a * B + b) * C + c) * E + e]);
  clear_tape();
  expect_grad_ok([](const std::vector<Var>& in) { return permute_0213(in[0]); }, {x});
  Var one(random_tensor({1, 1, 1, 1}, 3), true);
  expect_grad_ok([](const std::vector<Var>& in) { return permute_0213(in[0]); }, {one});
  EXPECT_THROW(permute_0213(Var(Tensor::zeros({2, 3, 4}))), Error);
}

TEST(OpsShape, PatchifyEqualsStridedConvolution) {
  const int64_t B = 2, C = 3, H = 6, W = 9, P = 3, D = 5;
  const Tensor img = random_tensor({B, C, H, W}, 4);
  const Tensor weight = random_tensor({D, C, P, P}, 5);  // Conv2d layout
  Var patches = patchify(Var(img), P);
  const int64_t gh = H / P, gw = W / P, L = gh * gw, F = C * P * P;
  ASSERT_EQ(patches.shape(), (Shape{B, L, F}));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t gy = 0; gy < gh; ++gy)
      for (int64_t gx = 0; gx < gw; ++gx)
        for (int64_t d = 0; d < D; ++d) {
          double conv = 0.0, lin = 0.0;  // conv2d(k = s = P) vs patch . weight.flatten()
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < P; ++i)
              for (int64_t j = 0; j < P; ++j)
                conv += double(img[((b * C + c) * H + gy * P + i) * W + gx * P + j]) *
                        weight[((d * C + c) * P + i) * P + j];
          const float* patch = patches.value().data() + (b * L + gy * gw + gx) * F;
          for (int64_t f = 0; f < F; ++f) lin += double(patch[f]) * weight[d * F + f];
          EXPECT_NEAR(lin, conv, 1e-5);
        }
  Var x(random_tensor({2, 2, 4, 6}, 6), true);
  expect_grad_ok([](const std::vector<Var>& in) { return patchify(in[0], 2); }, {x});
  Var odd(random_tensor({1, 3, 7, 7}, 7), true);
  expect_grad_ok([](const std::vector<Var>& in) { return patchify(in[0], 7); }, {odd});
  expect_grad_ok([](const std::vector<Var>& in) { return patchify(in[0], 1); }, {odd});
  EXPECT_THROW(patchify(odd, 2), Error);
  EXPECT_THROW(patchify(Var(Tensor::zeros({3, 4, 4})), 2), Error);
}

TEST(OpsShape, ConcatCls) {
  for (int64_t D : {1, 7, 13}) {
    const int64_t B = 3, N = 4;
    Var cls(random_tensor({1, 1, D}, 8), true), x(random_tensor({B, N, D}, 9), true);
    Var y = concat_cls(cls, x);
    ASSERT_EQ(y.shape(), (Shape{B, N + 1, D}));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) {
        EXPECT_EQ(y.value()[b * (N + 1) * D + d], cls.value()[d]);
        for (int64_t n = 0; n < N; ++n)
          EXPECT_EQ(y.value()[(b * (N + 1) + n + 1) * D + d], x.value()[(b * N + n) * D + d]);
      }
    clear_tape();
    expect_grad_ok([](const std::vector<Var>& in) { return concat_cls(in[0], in[1]); }, {cls, x});
  }
  EXPECT_THROW(concat_cls(Var(Tensor::zeros({1, 5})), Var(Tensor::zeros({2, 3, 5}))), Error);
}

TEST(OpsShape, SelectTokenAndMeanTokens) {
  for (int64_t D : {1, 7, 33}) {
    const int64_t B = 2, N = 5;
    Var x(random_tensor({B, N, D}, 10), true);
    Var s = select_token(x, 3), m = mean_tokens(x);
    ASSERT_EQ(s.shape(), (Shape{B, D}));
    ASSERT_EQ(m.shape(), (Shape{B, D}));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < D; ++d) {
        EXPECT_EQ(s.value()[b * D + d], x.value()[(b * N + 3) * D + d]);
        double ref = 0.0;
        for (int64_t n = 0; n < N; ++n) ref += x.value()[(b * N + n) * D + d];
        EXPECT_NEAR(m.value()[b * D + d], ref / N, 1e-6);
      }
    clear_tape();
    expect_grad_ok([](const std::vector<Var>& in) { return select_token(in[0], 0); }, {x});
    expect_grad_ok([](const std::vector<Var>& in) { return select_token(in[0], 4); }, {x});
    expect_grad_ok([](const std::vector<Var>& in) { return mean_tokens(in[0]); }, {x});
  }
  Var x(Tensor::zeros({2, 3, 4}));
  EXPECT_THROW(select_token(x, 3), Error);
  EXPECT_THROW(select_token(x, -1), Error);
  EXPECT_THROW(mean_tokens(Var(Tensor::zeros({2, 4}))), Error);
}
