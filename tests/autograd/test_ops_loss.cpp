// Gradchecks for cross_entropy (with and without label smoothing, odd class counts) and its
// argument errors (labels out of range, wrong count, bad shapes).
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"

using namespace vit;

TEST(OpsLoss, CrossEntropyGradcheck) {
  for (float s : {0.0f, 0.1f}) {
    for (auto [B, K] : {std::pair<int64_t, int64_t>{1, 1}, {2, 7}, {5, 13}, {3, 33}}) {
      std::vector<int32_t> labels(B);
      for (int64_t b = 0; b < B; ++b) labels[b] = static_cast<int32_t>((b * 5 + 2) % K);
      Var z(random_tensor({B, K}, 80 + K, -3.0f, 3.0f), true);
      const GradcheckResult r = gradcheck(
          [&labels, s](const std::vector<Var>& in) { return cross_entropy(in[0], labels, s); }, {z});
      EXPECT_TRUE(r.ok) << "B " << B << " K " << K << " s " << s << "\n" << r.report;
    }
  }
}

TEST(OpsLoss, CrossEntropyArgumentErrors) {
  Var z(Tensor::zeros({2, 3}), true);
  EXPECT_THROW(cross_entropy(z, {0, 3}), Error);   // label == K
  EXPECT_THROW(cross_entropy(z, {-1, 0}), Error);  // negative label
  EXPECT_THROW(cross_entropy(z, {0}), Error);      // count != B
  EXPECT_THROW(cross_entropy(Var(Tensor::zeros({2, 3, 1})), {0, 0}), Error);
  EXPECT_THROW(cross_entropy(z, {0, 1}, 1.5f), Error);
  try {
    cross_entropy(z, {0, 7});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 7"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tape_size(), 0u);
}

TEST(OpsLoss, UniformLogitsGiveLogK) {
  // every class equally likely: -log p = log K for every row, whatever the smoothing
  Var z(Tensor::zeros({4, 10}));
  EXPECT_NEAR(cross_entropy(z, {0, 1, 2, 9}, 0.0f).value()[0], std::log(10.0), 1e-6);
  EXPECT_NEAR(cross_entropy(z, {0, 1, 2, 9}, 0.3f).value()[0], std::log(10.0), 1e-6);
}
