// Each of the 8 optimizer chains (sgd/adam/adamw/radam, with and without Lookahead) trains a tiny
// ViT on a small fixed problem (two classes of 8x8 images: a bright left half vs a bright right half,
// with noise) and must bring the loss clearly below where it started. A broken update rule (wrong
// sign, no step, exploding moments) fails this.
#include <gtest/gtest.h>

#include "autograd/ops.hpp"
#include "core/rng.hpp"
#include "nn/vit.hpp"
#include "optim/make_optimizer.hpp"

using namespace vit;

namespace {

struct Problem {
  Tensor images;  // [B, 1, 8, 8]
  std::vector<int32_t> labels;
};

Problem make_problem(int64_t B) {
  Problem p{Tensor::empty({B, 1, 8, 8}), {}};
  Rng rng(5, RngPurpose::Test);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t y = static_cast<int32_t>(b % 2);
    p.labels.push_back(y);
    for (int64_t r = 0; r < 8; ++r)
      for (int64_t c = 0; c < 8; ++c)
        p.images[(b * 8 + r) * 8 + c] = ((c < 4) == (y == 0) ? 1.0f : -1.0f) + 0.5f * rng.normal();
  }
  return p;
}

double train(const std::string& chain, int steps) {
  ModelConfig mc;
  mc.image_size = 8;
  mc.channels = 1;
  mc.num_classes = 2;
  mc.patch_size = 4;
  mc.dim = 16;
  mc.depth = 1;
  mc.heads = 2;
  mc.mlp_ratio = 2;
  mc.pool = Pooling::Mean;  // input-dependent features from step 0, so plain SGD moves too
  ViT model(mc, 11);
  OptimSettings os;
  apply_opt_name(os, chain);
  os.lr = os.kind == OptimizerKind::Sgd ? 0.05f : 1e-2f;
  os.weight_decay = 0.01f;
  if (os.lookahead) os.lookahead->k = 3;
  auto opt = make_optimizer(os, model.parameters());
  const Problem p = make_problem(32);
  double first = 0, last = 0;
  for (int s = 0; s < steps; ++s) {
    Var loss = ViT::loss(model.forward(p.images, s), p.labels);
    if (s == 0) first = loss.value()[0];
    last = loss.value()[0];
    backward(loss);
    opt->step(os.lr);
    opt->zero_grad();
  }
  // Evaluate with the weights eval would use (Lookahead: slow weights).
  double eval_loss = 0;
  opt->with_eval_weights([&] {
    NoGradGuard no_grad;
    model.eval();
    eval_loss = ViT::loss(model.forward(p.images, 0), p.labels).value()[0];
  });
  EXPECT_LT(last, first) << chain;
  return eval_loss / first;
}

}  // namespace

class Convergence : public ::testing::TestWithParam<const char*> {};

TEST_P(Convergence, LossFallsClearly) {
  const double ratio = train(GetParam(), 80);
  EXPECT_LT(ratio, 0.5) << GetParam() << ": final/initial loss " << ratio;
}

INSTANTIATE_TEST_SUITE_P(AllChains, Convergence,
                         ::testing::Values("sgd", "adam", "adamw", "radam", "lookahead_sgd", "lookahead_adam",
                                           "lookahead_adamw", "lookahead_radam"));
