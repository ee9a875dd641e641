// Shared state of the Adam family (Adam, AdamW, RAdam): first and second moments and a step
// count per parameter, with their checkpoint names (optim.exp_avg.<p>, optim.exp_avg_sq.<p>,
// optim.step.<p>). The update rules live in the subclasses.
#pragma once
#include "optim/optimizer.hpp"

namespace vit {

class MomentOptimizer : public Optimizer {
 public:
  explicit MomentOptimizer(std::vector<NamedParam> params);

 protected:
  void export_state(OptimState& out, bool copy) const override;
  void import_state(const OptimState& in) override;

  std::vector<Tensor> m_, v_;   // exp_avg, exp_avg_sq per parameter
  std::vector<int64_t> steps_;  // per parameter
};

}  // namespace vit
