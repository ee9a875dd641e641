#include "optim/moments.hpp"

namespace vit {

MomentOptimizer::MomentOptimizer(std::vector<NamedParam> params) : Optimizer(std::move(params)) {
  for (const NamedParam& p : params_) {
    m_.push_back(Tensor::zeros(p.var.shape()));
    v_.push_back(Tensor::zeros(p.var.shape()));
  }
  steps_.assign(params_.size(), 0);
}

void MomentOptimizer::export_state(OptimState& out, bool copy) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    out.ints.emplace_back("optim.step." + params_[i].name, steps_[i]);
    put_tensor(out, "optim.exp_avg." + params_[i].name, m_[i], copy);
    put_tensor(out, "optim.exp_avg_sq." + params_[i].name, v_[i], copy);
  }
}

void MomentOptimizer::import_state(const OptimState& in) {
  for (size_t i = 0; i < params_.size(); ++i) {
    steps_[i] = get_int(in, "optim.step." + params_[i].name);
    get_tensor(in, "optim.exp_avg." + params_[i].name, m_[i]);
    get_tensor(in, "optim.exp_avg_sq." + params_[i].name, v_[i]);
  }
}

}  // namespace vit
