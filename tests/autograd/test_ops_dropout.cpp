// Dropout and drop path: gradchecks with the Rng re-created inside the function (so each
// evaluation draws the same mask), keep rates, inverted scaling, the serial mask order, p = 0
// returning the input itself, and bad p.
#include <gtest/gtest.h>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "core/parallel.hpp"

using namespace vit;

TEST(OpsDropout, Gradcheck) {
  for (const Shape& s : {Shape{1}, Shape{7}, Shape{3, 13}, Shape{2, 3, 33}}) {
    Var x(random_tensor(s, 1), true);
    GradcheckResult r = gradcheck([](const std::vector<Var>& in) {
      Rng rng(11, RngPurpose::Dropout, 3);
      return dropout(in[0], 0.4f, rng);
    }, {x});
    EXPECT_TRUE(r.ok) << r.report;
    r = gradcheck([](const std::vector<Var>& in) {
      Rng rng(12, RngPurpose::Dropout, 4);
      return drop_path(in[0], 0.5f, rng);
    }, {x});
    EXPECT_TRUE(r.ok) << r.report;
  }
}

TEST(OpsDropout, InvertedMaskDrawnSeriallyInElementOrder) {
  const int64_t n = 100001;
  const float p = 0.3f;
  Var x(random_tensor({n}, 2, 0.5f, 1.5f));  // never zero: a zero output means dropped
  Tensor first;
  const int before = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Rng rng(5, RngPurpose::Dropout, 1, 2);
    Var y = dropout(x, p, rng);
    Rng ref(5, RngPurpose::Dropout, 1, 2);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = !(ref.uniform() < p);
      ASSERT_EQ(y.value()[i], keep ? x.value()[i] * (1.0f / (1.0f - p)) : 0.0f) << "element " << i;
      kept += keep;
    }
    EXPECT_NEAR(double(kept) / n, 1.0 - p, 0.01);
    if (!first.defined()) first = y.value().clone();
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(first[i], y.value()[i]);
  }
  set_num_threads(before);
}

TEST(OpsDropout, ZeroProbabilityReturnsInputAndBadPThrows) {
  Var x(random_tensor({4, 5}, 3), true);
  Rng rng(1, RngPurpose::Dropout);
  EXPECT_TRUE(dropout(x, 0.0f, rng).same(x));
  EXPECT_TRUE(drop_path(x, 0.0f, rng).same(x));
  EXPECT_EQ(rng.position(), 0u);  // p = 0 draws nothing
  EXPECT_THROW(dropout(x, 1.0f, rng), Error);
  EXPECT_THROW(dropout(x, -0.1f, rng), Error);
  EXPECT_THROW(drop_path(x, 1.0f, rng), Error);
  EXPECT_EQ(tape_size(), 0u);
}

TEST(OpsDropout, DropPathKeepsOrDropsWholeSamples) {
  const int64_t B = 4000, inner = 6;
  const float p = 0.25f;
  Var x(random_tensor({B, 2, 3}, 4, 0.5f, 1.5f), true);
  Rng rng(9, RngPurpose::Dropout, 7);
  Var y = drop_path(x, p, rng);
  int64_t kept = 0;
  for (int64_t b = 0; b < B; ++b) {
    const bool keep = y.value()[b * inner] != 0.0f;
    kept += keep;
    for (int64_t i = 0; i < inner; ++i)
      ASSERT_EQ(y.value()[b * inner + i], keep ? x.value()[b * inner + i] * (1.0f / (1.0f - p)) : 0.0f);
  }
  EXPECT_NEAR(double(kept) / B, 1.0 - p, 0.025);
  backward(sum(y));
  for (int64_t b = 0; b < B; ++b)  // gradient is the mask: 0 or 1/(1-p) per sample
    EXPECT_EQ(x.grad()[b * inner], y.value()[b * inner] != 0.0f ? 1.0f / (1.0f - p) : 0.0f);
}
