// SGD with momentum, dampening, Nesterov and coupled L2 weight decay: torch.optim.SGD's
// single-tensor semantics (the first step sets the momentum buffer to the gradient).
#pragma once
#include "kernels/optim_update.hpp"
#include "optim/optimizer.hpp"

namespace vit {

struct SgdConfig {
  float momentum = 0.9f, dampening = 0.0f, weight_decay = 0.0f;
  bool nesterov = false;
};

class Sgd final : public Optimizer {
 public:
  Sgd(std::vector<NamedParam> params, const SgdConfig& config);
  void step(float lr) override;
  const char* name() const override { return "sgd"; }

 protected:
  void export_state(OptimState& out, bool copy) const override;
  void import_state(const OptimState& in) override;

 private:
  SgdConfig config_;
  std::vector<Tensor> buf_;     // momentum buffers (empty when momentum == 0)
  std::vector<int64_t> steps_;  // per parameter: 0 until the first step (buffer not yet set)
  std::vector<kernels::SgdScalars> scalars_;  // per parameter, rebuilt each step
};

}  // namespace vit
