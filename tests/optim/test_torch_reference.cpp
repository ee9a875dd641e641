// Our SGD / Adam / AdamW / RAdam against committed torch 1.13 trajectories
// (scripts/make_optim_fixtures.py): the same gradients are fed each step and the parameters
// after every step are compared. Not tested here: Lookahead, RAdam's skip policy (no torch
// counterpart; see test_optimizers.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "optim/make_optimizer.hpp"

using namespace vit;

namespace {

struct Fixture {
  nlohmann::json doc;
  std::vector<float> data;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture out;
    const std::string dir = std::string(VIT_FIXTURES) + "/optim/";
    std::ifstream js(dir + "torch_trajectories.json");
    EXPECT_TRUE(js.good()) << "missing fixture; run scripts/make_optim_fixtures.py";
    out.doc = nlohmann::json::parse(js);
    std::ifstream bin(dir + "torch_trajectories.bin", std::ios::binary | std::ios::ate);
    const auto bytes = static_cast<size_t>(bin.tellg());
    out.data.resize(bytes / sizeof(float));
    bin.seekg(0);
    bin.read(reinterpret_cast<char*>(out.data.data()), static_cast<std::streamsize>(bytes));
    return out;
  }();
  return f;
}

OptimSettings settings_for(const nlohmann::json& c) {
  OptimSettings s;
  apply_opt_name(s, c["kind"].get<std::string>());
  s.weight_decay = c["weight_decay"].get<float>();
  if (s.kind == OptimizerKind::Sgd) {
    s.momentum = c["momentum"].get<float>();
    s.dampening = c["dampening"].get<float>();
    s.nesterov = c["nesterov"].get<bool>();
  } else {
    s.beta1 = c["beta1"].get<float>();
    s.beta2 = c["beta2"].get<float>();
    s.eps = c["eps"].get<float>();
  }
  return s;  // radam: threshold 5, policy Sgd, coupled decay = torch.optim.RAdam
}

// max |a - b| / max |b| over one tensor: the error relative to the tensor's scale.
double rel_error(const float* a, const float* b, int64_t n) {
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return diff / scale;
}

class TorchReference : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchReference, EveryStepMatches) {
  const Fixture& f = fixture();
  const nlohmann::json* found = nullptr;
  for (const auto& c : f.doc["cases"])
    if (c["name"] == GetParam()) found = &c;
  ASSERT_NE(found, nullptr) << GetParam();
  const nlohmann::json& c = *found;
  const int64_t steps = f.doc["steps"].get<int64_t>();

  std::vector<NamedParam> params;
  for (const auto& p : f.doc["params"])
    params.push_back({p["name"].get<std::string>(), Var(Tensor::zeros(p["shape"].get<Shape>()), true)});
  const float* cur = f.data.data() + c["offset"].get<int64_t>();
  for (NamedParam& p : params) {
    std::copy(cur, cur + p.var.numel(), p.var.value().data());
    cur += p.var.numel();
  }
  auto opt = make_optimizer(settings_for(c), params);
  double worst = 0;
  for (int64_t t = 0; t < steps; ++t) {
    const float lr = *cur++;
    for (NamedParam& p : params) {
      std::copy(cur, cur + p.var.numel(), p.var.grad().data());
      cur += p.var.numel();
    }
    opt->step(lr);
    for (NamedParam& p : params) {
      const double err = rel_error(p.var.value().data(), cur, p.var.numel());
      worst = std::max(worst, err);
      // torch's vectorised CPU kernels use fused multiply-adds (add_ with alpha); ours round
      // each product, so single results differ by an ulp and drift by a few ulps over 25 steps.
      EXPECT_LE(err, 1e-6) << GetParam() << " step " << t + 1 << " " << p.name;
      cur += p.var.numel();
    }
  }
  RecordProperty("worst_rel_error", std::to_string(worst));
  std::printf("[ %s ] worst relative error over %lld steps: %.3g\n", GetParam().c_str(),
              static_cast<long long>(steps), worst);
}

INSTANTIATE_TEST_SUITE_P(Optim, TorchReference,
                         ::testing::Values("sgd_momentum", "sgd_nesterov", "sgd_dampening", "sgd_plain",
                                           "adam", "adamw", "radam", "radam_b2_099"));

}  // namespace
