// Adam (coupled L2 weight decay: torch.optim.Adam) and AdamW (decoupled: torch.optim.AdamW,
// p *= 1 - lr * wd before the moment update); torch's single-tensor conventions: eps is added
// to sqrt(v) / sqrt(1 - beta2^t), the step size is lr / (1 - beta1^t). No amsgrad.
#pragma once
#include "kernels/optim_update.hpp"
#include "optim/moments.hpp"

namespace vit {

struct AdamConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  bool decoupled = false;  // true: AdamW
};

class Adam final : public MomentOptimizer {
 public:
  Adam(std::vector<NamedParam> params, const AdamConfig& config);
  void step(float lr) override;
  const char* name() const override { return config_.decoupled ? "adamw" : "adam"; }

 private:
  AdamConfig config_;
  std::vector<kernels::AdamScalars> scalars_;
};

}  // namespace vit
