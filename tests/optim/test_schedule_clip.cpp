// Learning-rate schedules at known steps (hand-computed values) and global-norm gradient
// clipping against a double-precision reference, including thread-count invariance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/parallel.hpp"
#include "optim/clip.hpp"
#include "optim/schedule.hpp"

using namespace vit;

namespace {

TEST(Schedule, ConstantWithWarmup) {
  ScheduleSettings s;
  s.kind = ScheduleKind::Constant;
  s.warmup_steps = 4;
  s.warmup_lr = 0.0f;
  EXPECT_FLOAT_EQ(learning_rate(s, 1.0f, 0), 0.0f);
  EXPECT_FLOAT_EQ(learning_rate(s, 1.0f, 1), 0.25f);
  EXPECT_FLOAT_EQ(learning_rate(s, 1.0f, 3), 0.75f);
  EXPECT_FLOAT_EQ(learning_rate(s, 1.0f, 4), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(s, 1.0f, 1000000), 1.0f);
  s.warmup_steps = 0;
  EXPECT_EQ(learning_rate(s, 0.3f, 0), 0.3f);
}

TEST(Schedule, StepDecaysEveryStepSize) {
  ScheduleSettings s;
  s.kind = ScheduleKind::Step;
  s.step_size = 10;
  s.gamma = 0.5f;
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 0), 0.8f);
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 9), 0.8f);
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 10), 0.4f);
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 29), 0.2f);
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 30), 0.1f);
  s.warmup_steps = 5;  // warm-up overrides the first steps; the drops stay at multiples of step_size
  s.warmup_lr = 0.0f;
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 2), 0.32f);
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 5), 0.8f);
  EXPECT_FLOAT_EQ(learning_rate(s, 0.8f, 10), 0.4f);
}

TEST(Schedule, CosineShiftedByWarmupReachesFloorAtTotal) {
  ScheduleSettings s;
  s.kind = ScheduleKind::Cosine;
  s.warmup_steps = 10;
  s.warmup_lr = 0.1f;
  s.min_lr = 0.01f;
  s.total_steps = 110;
  const float lr = 1.0f;
  EXPECT_FLOAT_EQ(learning_rate(s, lr, 0), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate(s, lr, 5), 0.55f);     // 0.1 + 5 * 0.9 / 10
  EXPECT_FLOAT_EQ(learning_rate(s, lr, 10), 1.0f);     // cosine starts at lr after warm-up
  EXPECT_FLOAT_EQ(learning_rate(s, lr, 60), 0.505f);   // half way: (lr + min_lr) / 2
  EXPECT_FLOAT_EQ(learning_rate(s, lr, 35), static_cast<float>(0.01 + 0.5 * 0.99 * (1 + std::sqrt(0.5))));
  EXPECT_FLOAT_EQ(learning_rate(s, lr, 110), 0.01f);   // the floor at total_steps
  EXPECT_FLOAT_EQ(learning_rate(s, lr, 500), 0.01f);   // and after it
  for (int64_t t = 11; t <= 110; ++t) EXPECT_LE(learning_rate(s, lr, t), learning_rate(s, lr, t - 1));
}

TEST(Schedule, RejectsInvalidSettings) {
  ScheduleSettings s;
  s.kind = ScheduleKind::Cosine;
  s.total_steps = 10;
  s.warmup_steps = 10;
  EXPECT_THROW(learning_rate(s, 1.0f, 0), Error);
  s = ScheduleSettings{};
  s.kind = ScheduleKind::Step;
  s.step_size = 0;
  try {
    validate(s);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("step_size"), std::string::npos);
  }
  EXPECT_EQ(epochs_to_steps(2.5, 100), 250);
}

// ---- clipping ---------------------------------------------------------------------------------

std::vector<NamedParam> grads_params() {
  std::vector<NamedParam> ps;
  const Shape shapes[] = {{300, 130}, {130}, {7, 5}};  // 39000 + 130 + 35: the parallel path engages
  for (const Shape& shape : shapes) {
    Var v(Tensor::zeros(shape), true);
    Tensor& g = v.grad();
    for (int64_t i = 0; i < g.numel(); ++i)
      g[i] = static_cast<float>(std::sin(0.013 * static_cast<double>(i) + static_cast<double>(ps.size())) *
                                (1 + static_cast<double>(i % 7)));
    ps.push_back({"p" + std::to_string(ps.size()), v});
  }
  ps.push_back({"no_grad", Var(Tensor::zeros({4}), true)});  // never received a gradient
  return ps;
}

double reference_norm(const std::vector<NamedParam>& ps) {
  double s = 0;
  for (const NamedParam& p : ps) {
    if (!p.var.has_grad()) continue;
    for (int64_t i = 0; i < p.var.numel(); ++i) s += static_cast<double>(p.var.grad()[i]) * p.var.grad()[i];
  }
  return std::sqrt(s);
}

TEST(ClipGradNorm, ComputeOnlyMatchesDoubleReference) {
  auto ps = grads_params();
  const double ref = reference_norm(ps);
  const std::vector<float> before = ps[0].var.grad().to_vector();
  const double norm = clip_grad_norm(ps, 0.0f);
  EXPECT_NEAR(norm, ref, 1e-12 * ref);
  EXPECT_EQ(ps[0].var.grad().to_vector(), before);
  EXPECT_FALSE(ps[3].var.has_grad());
  EXPECT_EQ(clip_grad_norm(ps, static_cast<float>(2 * ref)), norm);  // below max: untouched
  EXPECT_EQ(ps[0].var.grad().to_vector(), before);
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  auto ps = grads_params();
  std::vector<std::vector<float>> before;
  for (const NamedParam& p : ps) before.push_back(p.var.has_grad() ? p.var.grad().to_vector() : std::vector<float>{});
  const double ref = reference_norm(ps);
  const float max_norm = static_cast<float>(ref / 3);
  const double norm = clip_grad_norm(ps, max_norm);
  EXPECT_NEAR(norm, ref, 1e-12 * ref);
  const float coef = static_cast<float>(static_cast<double>(max_norm) / (norm + 1e-6));  // torch's formula
  for (size_t j = 0; j < 3; ++j)
    for (int64_t i = 0; i < ps[j].var.numel(); ++i)
      ASSERT_EQ(ps[j].var.grad()[i], before[j][static_cast<size_t>(i)] * coef) << j << " " << i;
  EXPECT_NEAR(reference_norm(ps), max_norm, 1e-5 * max_norm);
  EXPECT_FALSE(ps[3].var.has_grad());
}

TEST(ClipGradNorm, OneAndTwoThreadsIdentical) {
  double norms[2];
  std::vector<float> clipped[2];
  for (int threads = 1; threads <= 2; ++threads) {
    set_num_threads(threads);
    auto ps = grads_params();
    norms[threads - 1] = clip_grad_norm(ps, 1.0f);
    clipped[threads - 1] = ps[0].var.grad().to_vector();
  }
  set_num_threads(2);
  EXPECT_EQ(std::memcmp(&norms[0], &norms[1], sizeof(double)), 0);
  EXPECT_EQ(clipped[0], clipped[1]);
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradients) {
  auto ps = grads_params();
  ps[2].var.grad()[3] = std::nanf("");
  const std::vector<float> before = ps[0].var.grad().to_vector();
  EXPECT_TRUE(std::isnan(clip_grad_norm(ps, 1.0f)));
  EXPECT_EQ(ps[0].var.grad().to_vector(), before);
}

}  // namespace
