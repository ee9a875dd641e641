// Optimizer chain behaviour beyond the torch trajectories: RAdam around its threshold (both
// policies, decoupled decay) against a double-precision evaluation of the formulas, Lookahead
// against its definition, exact save -> load -> continue for all 8 chains, state validation,
// thread invariance, parameter groups and the --opt parser.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "optim/lookahead.hpp"
#include "optim/make_optimizer.hpp"
#include "optim/radam.hpp"

using namespace vit;

namespace {

// A deterministic gradient for (step, parameter, element), with both signs and varied scale.
float grad_at(int64_t step, size_t param, int64_t i) {
  return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + 1.3 * static_cast<double>(step) +
                                     0.5 * static_cast<double>(param)) *
                            (1.0 + 0.5 * static_cast<double>((i + step) % 3)));
}

std::vector<NamedParam> make_params(bool big = false) {
  std::vector<NamedParam> ps;
  auto add = [&](const std::string& name, const Shape& shape) {
    Tensor t = Tensor::zeros(shape);
    for (int64_t i = 0; i < t.numel(); ++i)
      t[i] = static_cast<float>(std::cos(0.11 * static_cast<double>(i) + static_cast<double>(ps.size())));
    ps.push_back({name, Var(t, true)});
  };
  add("blocks.0.attn.qkv.weight", {6, 4});
  add("blocks.0.attn.qkv.bias", {6});
  add("pos_embed", {1, 3, 4});
  if (big) add("head.weight", {130, 300});  // 39000 elements: several chunks, threads engage
  return ps;
}

std::vector<NamedParam> clone_params(const std::vector<NamedParam>& ps) {
  std::vector<NamedParam> out;
  for (const NamedParam& p : ps) out.push_back({p.name, Var(p.var.value().clone(), true)});
  return out;
}

void set_grads(std::vector<NamedParam>& ps, int64_t step) {
  for (size_t j = 0; j < ps.size(); ++j) {
    Tensor& g = ps[j].var.grad();
    for (int64_t i = 0; i < g.numel(); ++i) g[i] = grad_at(step, j, i);
  }
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

double rel_error(const Tensor& a, const std::vector<double>& ref) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - ref[static_cast<size_t>(i)]));
    scale = std::max(scale, std::fabs(ref[static_cast<size_t>(i)]));
  }
  return diff / scale;
}

// ---- RAdam around the threshold -------------------------------------------------------------

struct RAdamCase {
  RAdamPolicy policy;
  bool decoupled;
};

class RAdamThreshold : public ::testing::TestWithParam<RAdamCase> {};

TEST_P(RAdamThreshold, FirstStepsMatchDoubleFormula) {
  const RAdamCase rc = GetParam();
  OptimSettings s;
  s.kind = OptimizerKind::RAdam;
  s.beta2 = 0.999f;
  s.weight_decay = 0.1f;
  s.radam_policy = rc.policy;
  s.radam_decoupled = rc.decoupled;
  auto params = make_params();
  auto opt = make_optimizer(s, params);
  const double b1 = s.beta1, b2 = s.beta2, eps = s.eps, lr = 0.01;

  // Independent double-precision state: p, m, v per parameter.
  std::vector<std::vector<double>> p, m, v;
  for (const NamedParam& q : params) {
    p.emplace_back(q.var.value().data(), q.var.value().data() + q.var.numel());
    m.emplace_back(q.var.numel(), 0.0);
    v.emplace_back(q.var.numel(), 0.0);
  }
  const double rho_inf = 2.0 / (1.0 - b2) - 1.0;
  for (int64_t t = 1; t <= 8; ++t) {
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    const double rho_t = rho_inf - 2.0 * t * std::pow(b2, t) / bc2;
    // The ANCHORS.md B2 table: rho_5 = 4.996 (not rectified under tau = 5), rho_6 = 5.994.
    if (t == 5) {
      EXPECT_NEAR(rho_t, 4.996, 1e-3);
    }
    if (t == 6) {
      EXPECT_NEAR(rho_t, 5.994, 1e-3);
    }
    const RAdamTerms terms = radam_terms(b2, t);
    EXPECT_NEAR(terms.rho_t, rho_t, 1e-9);
    const bool rectified = rho_t > 5.0;
    std::vector<Tensor> before;
    for (const NamedParam& q : params) before.push_back(q.var.value().clone());
    set_grads(params, t);
    opt->step(static_cast<float>(lr));
    for (size_t j = 0; j < params.size(); ++j) {
      const double wd = j == 0 ? static_cast<double>(s.weight_decay) : 0.0;  // only the 2-D weight decays
      const bool moves = rectified || rc.policy == RAdamPolicy::Sgd;
      for (size_t i = 0; i < p[j].size(); ++i) {
        double g = grad_at(t, j, static_cast<int64_t>(i));
        if (rc.decoupled && moves) p[j][i] *= 1 - lr * wd;
        if (!rc.decoupled) g += wd * p[j][i];
        m[j][i] = b1 * m[j][i] + (1 - b1) * g;
        v[j][i] = b2 * v[j][i] + (1 - b2) * g * g;
        const double m_hat = m[j][i] / bc1;
        if (rectified) {
          const double r = std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t));
          p[j][i] -= lr * r * m_hat * std::sqrt(bc2) / (std::sqrt(v[j][i]) + eps);
        } else if (rc.policy == RAdamPolicy::Sgd) {
          p[j][i] -= lr * m_hat;
        }
      }
      const Tensor& got = params[j].var.value();
      if (!rectified && rc.policy == RAdamPolicy::Skip)
        EXPECT_TRUE(bitwise_equal(got, before[j])) << "skip policy moved " << params[j].name << " at step " << t;
      else
        EXPECT_FALSE(bitwise_equal(got, before[j])) << params[j].name << " did not move at step " << t;
      EXPECT_LE(rel_error(got, p[j]), 1e-6) << params[j].name << " step " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Optim, RAdamThreshold,
                         ::testing::Values(RAdamCase{RAdamPolicy::Sgd, false}, RAdamCase{RAdamPolicy::Skip, false},
                                           RAdamCase{RAdamPolicy::Sgd, true}, RAdamCase{RAdamPolicy::Skip, true}),
                         [](const ::testing::TestParamInfo<RAdamCase>& pi) {
                           return std::string(pi.param.policy == RAdamPolicy::Sgd ? "sgd" : "skip") +
                                  (pi.param.decoupled ? "_decoupled" : "_coupled");
                         });

TEST(RAdam, ThresholdIsConfigurable) {
  // tau = 4: step 5 (rho = 4.996) is already rectified, so the skip policy moves it.
  OptimSettings s;
  s.kind = OptimizerKind::RAdam;
  s.radam_policy = RAdamPolicy::Skip;
  s.radam_threshold = 4.0f;
  auto params = make_params();
  auto opt = make_optimizer(s, params);
  for (int64_t t = 1; t <= 5; ++t) {
    const Tensor before = params[0].var.value().clone();
    set_grads(params, t);
    opt->step(0.01f);
    EXPECT_EQ(bitwise_equal(params[0].var.value(), before), t <= 4) << "step " << t;
  }
}

// ---- Lookahead ------------------------------------------------------------------------------

OptimSettings adam_settings() {
  OptimSettings s;
  s.kind = OptimizerKind::Adam;
  s.weight_decay = 0.05f;
  return s;
}

TEST(Lookahead, FollowsTheDefinition) {
  const int64_t k = 3;
  const float alpha = 0.5f;
  auto params = make_params();
  auto ref_params = clone_params(params);
  OptimSettings s = adam_settings();
  s.lookahead = LookaheadSettings{k, alpha, true};
  auto opt = make_optimizer(s, params);
  auto inner = make_optimizer(adam_settings(), ref_params);  // the fast optimizer, alone
  std::vector<std::vector<double>> slow;
  for (const NamedParam& p : ref_params)
    slow.emplace_back(p.var.value().data(), p.var.value().data() + p.var.numel());
  for (int64_t t = 1; t <= 8; ++t) {
    set_grads(params, t);
    set_grads(ref_params, t);
    opt->step(0.02f);
    inner->step(0.02f);
    if (t % k == 0) {  // phi += alpha (theta - phi); theta = phi; the inner state is kept
      for (size_t j = 0; j < slow.size(); ++j) {
        Tensor& fast = ref_params[j].var.value();
        for (int64_t i = 0; i < fast.numel(); ++i) {
          double& phi = slow[j][static_cast<size_t>(i)];
          phi += alpha * (fast[i] - phi);
          fast[i] = static_cast<float>(phi);
        }
      }
    }
    for (size_t j = 0; j < params.size(); ++j) {
      std::vector<double> expect(ref_params[j].var.value().data(),
                                 ref_params[j].var.value().data() + ref_params[j].var.numel());
      EXPECT_LE(rel_error(params[j].var.value(), expect), 1e-6) << "step " << t << " " << params[j].name;
    }
  }
  // After 8 steps (last sync at 6) the eval weights are phi, and swapping back restores theta.
  auto& la = dynamic_cast<Lookahead&>(*opt);
  EXPECT_EQ(la.counter(), 8);
  std::vector<Tensor> fast_before;
  for (const NamedParam& p : params) fast_before.push_back(p.var.value().clone());
  bool ran = false;
  la.with_eval_weights([&] {
    ran = true;
    for (size_t j = 0; j < params.size(); ++j)
      EXPECT_LE(rel_error(params[j].var.value(), slow[j]), 1e-6) << params[j].name;
  });
  EXPECT_TRUE(ran);
  for (size_t j = 0; j < params.size(); ++j) EXPECT_TRUE(bitwise_equal(params[j].var.value(), fast_before[j]));
  EXPECT_THROW(la.with_eval_weights([] { throw Error(ErrorKind::Data, "eval failed"); }), Error);
  EXPECT_FALSE(la.swapped());
  for (size_t j = 0; j < params.size(); ++j) EXPECT_TRUE(bitwise_equal(params[j].var.value(), fast_before[j]));
  la.swap_in_slow();
  EXPECT_THROW(la.step(0.01f), Error);
  la.swap_back();
}

class LookaheadAlphaOne : public ::testing::TestWithParam<int64_t> {};

TEST_P(LookaheadAlphaOne, EqualsInnerOptimizer) {
  auto params = make_params();
  auto ref_params = clone_params(params);
  OptimSettings s = adam_settings();
  s.lookahead = LookaheadSettings{GetParam(), 1.0f, true};
  auto opt = make_optimizer(s, params);
  auto inner = make_optimizer(adam_settings(), ref_params);
  for (int64_t t = 1; t <= 10; ++t) {
    set_grads(params, t);
    set_grads(ref_params, t);
    opt->step(0.02f);
    inner->step(0.02f);
    // phi + 1 * (theta - phi) rounds to theta except for an occasional last-bit difference.
    for (size_t j = 0; j < params.size(); ++j) {
      const Tensor& r = ref_params[j].var.value();
      EXPECT_LE(rel_error(params[j].var.value(), std::vector<double>(r.data(), r.data() + r.numel())), 1e-6);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Optim, LookaheadAlphaOne, ::testing::Values(1, 3));

// ---- save -> load -> continue, all 8 chains --------------------------------------------------

struct Chain {
  OptimizerKind kind;
  bool lookahead;
};

std::string chain_name(const ::testing::TestParamInfo<Chain>& info) {
  OptimSettings s;
  s.kind = info.param.kind;
  if (info.param.lookahead) s.lookahead.emplace();
  return opt_name(s);
}

OptimSettings chain_settings(const Chain& c) {
  OptimSettings s;
  s.kind = c.kind;
  s.weight_decay = 0.05f;
  s.nesterov = true;
  if (c.lookahead) s.lookahead = LookaheadSettings{5, 0.5f, true};
  return s;
}

float lr_at(int64_t t) { return 0.01f * (1.0f + 0.1f * static_cast<float>(t % 4)); }

class ResumeChain : public ::testing::TestWithParam<Chain> {};

TEST_P(ResumeChain, SaveLoadContinueIsBitwiseIdentical) {
  const OptimSettings s = chain_settings(GetParam());
  auto params = make_params(/*big=*/true);
  auto opt = make_optimizer(s, params);
  const int64_t first = 7, total = 13;  // crosses a Lookahead sync at 5 and 10, RAdam's threshold at 6
  OptimState saved;
  std::vector<NamedParam> saved_params;
  for (int64_t t = 1; t <= total; ++t) {
    set_grads(params, t);
    opt->step(lr_at(t));
    opt->zero_grad();
    if (t == first) {
      opt->save_state(saved);
      saved_params = clone_params(params);
    }
  }
  // A fresh chain on the saved weights, built the same way, then the same remaining steps.
  auto resumed = make_optimizer(s, saved_params);
  resumed->load_state(saved);
  for (int64_t t = first + 1; t <= total; ++t) {
    set_grads(saved_params, t);
    resumed->step(lr_at(t));
    resumed->zero_grad();
  }
  for (size_t j = 0; j < params.size(); ++j)
    EXPECT_TRUE(bitwise_equal(params[j].var.value(), saved_params[j].var.value())) << params[j].name;
  OptimState a, b;
  opt->save_state(a);
  resumed->save_state(b);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].first, b.tensors[i].first);
    EXPECT_TRUE(bitwise_equal(a.tensors[i].second, b.tensors[i].second)) << a.tensors[i].first;
  }
  EXPECT_EQ(a.ints, b.ints);
  // The saved copy did not alias live state: it still holds the step-7 values.
  EXPECT_EQ(*saved.find_int("optim.step.pos_embed"), first);
  if (s.lookahead) {
    EXPECT_EQ(*saved.find_int("lookahead.counter"), first);
  }
}

TEST_P(ResumeChain, OneAndTwoThreadsAgree) {
  const OptimSettings s = chain_settings(GetParam());
  std::vector<Tensor> results[2];
  for (int threads = 1; threads <= 2; ++threads) {
    set_num_threads(threads);
    auto params = make_params(/*big=*/true);
    auto opt = make_optimizer(s, params);
    for (int64_t t = 1; t <= 6; ++t) {
      set_grads(params, t);
      opt->step(lr_at(t));
    }
    for (const NamedParam& p : params) results[threads - 1].push_back(p.var.value().clone());
  }
  set_num_threads(2);
  for (size_t j = 0; j < results[0].size(); ++j) EXPECT_TRUE(bitwise_equal(results[0][j], results[1][j]));
}

INSTANTIATE_TEST_SUITE_P(Optim, ResumeChain,
                         ::testing::Values(Chain{OptimizerKind::Sgd, false}, Chain{OptimizerKind::Adam, false},
                                           Chain{OptimizerKind::AdamW, false}, Chain{OptimizerKind::RAdam, false},
                                           Chain{OptimizerKind::Sgd, true}, Chain{OptimizerKind::Adam, true},
                                           Chain{OptimizerKind::AdamW, true}, Chain{OptimizerKind::RAdam, true}),
                         chain_name);

// ---- state validation -----------------------------------------------------------------------

std::string load_error(Optimizer& opt, const OptimState& st) {
  try {
    opt.load_state(st);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    return e.what();
  }
  return "";
}

TEST(OptimState, LoadValidatesNamesAndShapes) {
  OptimSettings s = adam_settings();
  s.lookahead.emplace();
  auto params = make_params();
  auto opt = make_optimizer(s, params);
  OptimState good;
  opt->save_state(good);
  EXPECT_NE(good.find_tensor("optim.exp_avg.blocks.0.attn.qkv.weight"), nullptr);
  EXPECT_NE(good.find_tensor("optim.exp_avg_sq.pos_embed"), nullptr);
  EXPECT_NE(good.find_tensor("lookahead.slow.blocks.0.attn.qkv.bias"), nullptr);
  EXPECT_NE(good.find_int("optim.step.pos_embed"), nullptr);
  EXPECT_NE(good.find_int("lookahead.counter"), nullptr);
  EXPECT_EQ(load_error(*opt, good), "");

  OptimState missing = good;
  missing.tensors.erase(missing.tensors.begin() + 1);
  EXPECT_NE(load_error(*opt, missing).find(good.tensors[1].first), std::string::npos);

  OptimState shape = good;
  shape.tensors[0].second = Tensor::zeros({24});
  EXPECT_NE(load_error(*opt, shape).find(good.tensors[0].first), std::string::npos);

  OptimState counter = good;
  counter.ints.pop_back();
  EXPECT_NE(load_error(*opt, counter).find("lookahead.counter"), std::string::npos);

  // An SGD state offered to Adam: the Adam entries are missing.
  OptimSettings sgd;
  sgd.kind = OptimizerKind::Sgd;
  auto sgd_params = make_params();
  auto sgd_opt = make_optimizer(sgd, sgd_params);
  OptimState sgd_state;
  sgd_opt->save_state(sgd_state);
  EXPECT_NE(load_error(*opt, sgd_state).find("optim.exp_avg."), std::string::npos);
  // A Lookahead state offered to the bare SGD: the slow weights are unexpected.
  auto la_sgd = sgd;
  la_sgd.lookahead.emplace();
  auto la_params = make_params();
  auto la_opt = make_optimizer(la_sgd, la_params);
  OptimState la_state;
  la_opt->save_state(la_state);
  EXPECT_NE(load_error(*sgd_opt, la_state).find("lookahead."), std::string::npos);
  // Entries outside optim./lookahead. belong to someone else and are ignored.
  OptimState extra = good;
  extra.tensors.emplace_back("model.head.weight", Tensor::zeros({2}));
  extra.ints.emplace_back("epoch", 3);
  EXPECT_EQ(load_error(*opt, extra), "");
}

// ---- parameter groups, zero_grad, --opt -----------------------------------------------------

TEST(ParamGroups, ExemptionsFollowTimm) {
  EXPECT_FALSE(weight_decay_exempt("blocks.0.attn.qkv.weight", {12, 4}));
  EXPECT_TRUE(weight_decay_exempt("blocks.0.attn.qkv.bias", {12}));
  EXPECT_TRUE(weight_decay_exempt("blocks.0.norm1.weight", {4}));  // 1-D (LayerNorm gain)
  EXPECT_TRUE(weight_decay_exempt("pos_embed", {1, 5, 4}));
  EXPECT_TRUE(weight_decay_exempt("cls_token", {1, 1, 4}));
  EXPECT_TRUE(weight_decay_exempt("encoder.pos_embed", {1, 5, 4}));
  EXPECT_FALSE(weight_decay_exempt("patch_embed.proj.weight", {4, 1, 2, 2}));
  EXPECT_FALSE(weight_decay_exempt("my_pos_embed_mlp.weight", {4, 4}));
}

TEST(ParamGroups, AdamWDecaysOnlyTheDecayedGroup) {
  OptimSettings s;
  s.kind = OptimizerKind::AdamW;
  s.weight_decay = 0.1f;
  auto params = make_params();
  auto opt = make_optimizer(s, params);
  std::vector<Tensor> before;
  for (const NamedParam& p : params) before.push_back(p.var.value().clone());
  opt->zero_grad();
  opt->step(0.5f);  // zero gradients: only the decoupled decay can move a parameter
  const float keep = static_cast<float>(1.0 - 0.5 * static_cast<double>(0.1f));
  for (int64_t i = 0; i < params[0].var.numel(); ++i) EXPECT_EQ(params[0].var.value()[i], before[0][i] * keep);
  EXPECT_TRUE(bitwise_equal(params[1].var.value(), before[1]));  // bias
  EXPECT_TRUE(bitwise_equal(params[2].var.value(), before[2]));  // pos_embed
}

TEST(ZeroGrad, ClearsEveryGradient) {
  auto params = make_params();
  auto opt = make_optimizer(adam_settings(), params);
  set_grads(params, 1);
  opt->zero_grad();
  for (const NamedParam& p : params)
    for (int64_t i = 0; i < p.var.numel(); ++i) EXPECT_EQ(p.var.grad()[i], 0.0f);
}

TEST(OptName, ParsesAllChains) {
  const std::pair<const char*, OptimizerKind> names[] = {
      {"sgd", OptimizerKind::Sgd}, {"adam", OptimizerKind::Adam}, {"adamw", OptimizerKind::AdamW},
      {"radam", OptimizerKind::RAdam}};
  for (const auto& [name, kind] : names) {
    OptimSettings s;
    apply_opt_name(s, name);
    EXPECT_EQ(s.kind, kind);
    EXPECT_FALSE(s.lookahead.has_value());
    EXPECT_EQ(opt_name(s), name);
    apply_opt_name(s, std::string("lookahead_") + name);
    EXPECT_EQ(s.kind, kind);
    ASSERT_TRUE(s.lookahead.has_value());
    EXPECT_EQ(s.lookahead->k, 5);
    EXPECT_EQ(opt_name(s), std::string("lookahead_") + name);
  }
  OptimSettings s;
  s.lookahead = LookaheadSettings{7, 0.3f, false};
  apply_opt_name(s, "lookahead_sgd");
  EXPECT_EQ(s.lookahead->k, 7);  // --lookahead-k given before --opt is kept
  for (const char* bad : {"rmsprop", "lookahead_", "lookahead_lookahead_adam", "Adam", ""}) {
    try {
      apply_opt_name(s, bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      EXPECT_NE(std::string(e.what()).find("sgd, adam, adamw or radam"), std::string::npos);
    }
  }
}

TEST(Validate, RejectsBadSettings) {
  auto expect_config = [](const OptimSettings& s, const char* field) {
    try {
      validate(s);
      ADD_FAILURE() << field;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Config);
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  OptimSettings s;
  s.beta2 = 1.0f;
  expect_config(s, "beta2");
  s = OptimSettings{};
  s.kind = OptimizerKind::Sgd;
  s.nesterov = true;
  s.dampening = 0.1f;
  expect_config(s, "nesterov");
  s = OptimSettings{};
  s.lookahead = LookaheadSettings{0, 0.5f, true};
  expect_config(s, "lookahead.k");
  s.lookahead = LookaheadSettings{5, 1.5f, true};
  expect_config(s, "lookahead.alpha");
}

}  // namespace
