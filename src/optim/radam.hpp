// RAdam (torch 1.13 torch.optim.RAdam semantics): Adam moments; while the variance of the
// adaptive step is intractable (rho_t <= threshold; torch: 5) either torch's un-rectified
// momentum step p -= lr * m_hat (policy Sgd) or no parameter update at all (policy Skip, the
// official code's degenerated_to_sgd=False; moments still accumulate). Weight decay is L2
// (coupled) by default; decoupled = torch 2.0's RAdam(decoupled_weight_decay=True), p *= 1 - lr*wd
// on every step that moves p.
#pragma once
#include "kernels/optim_update.hpp"
#include "optim/moments.hpp"
#include "optim/settings.hpp"

namespace vit {

struct RAdamConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  float threshold = 5.0f;
  RAdamPolicy policy = RAdamPolicy::Sgd;
  bool decoupled = false;
};

// The rectification terms of step t (1-based), in double: rho_inf, rho_t and r_t (r_t is 0
// when rho_t <= 4, where it is undefined).
struct RAdamTerms {
  double rho_inf, rho_t, rect;
};
RAdamTerms radam_terms(double beta2, int64_t t);

class RAdam final : public MomentOptimizer {
 public:
  RAdam(std::vector<NamedParam> params, const RAdamConfig& config);
  void step(float lr) override;
  const char* name() const override { return "radam"; }

 private:
  RAdamConfig config_;
  std::vector<kernels::RAdamScalars> scalars_;
};

}  // namespace vit
