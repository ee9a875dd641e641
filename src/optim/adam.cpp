// Adam / AdamW step: scalars in double (as torch computes Python floats), one parallel pass.
#include "optim/adam.hpp"

#include <cmath>

#include "core/parallel.hpp"

namespace vit {

Adam::Adam(std::vector<NamedParam> params, const AdamConfig& config)
    : MomentOptimizer(std::move(params)), config_(config) {
  scalars_.resize(params_.size());
}

void Adam::step(float lr) {
  const double b1 = config_.beta1, b2 = config_.beta2, dlr = lr;
  std::vector<float*> g(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    g[i] = grad_data(static_cast<int64_t>(i));
    const double t = static_cast<double>(steps_[i] + 1);
    const double wd = decays_[i] ? static_cast<double>(config_.weight_decay) : 0.0;
    kernels::AdamScalars& s = scalars_[i];
    s.decay = config_.decoupled ? static_cast<float>(1.0 - dlr * wd) : 1.0f;
    s.weight_decay = config_.decoupled ? 0.0f : static_cast<float>(wd);
    s.beta1 = config_.beta1;
    s.one_minus_beta1 = static_cast<float>(1.0 - b1);
    s.beta2 = config_.beta2;
    s.one_minus_beta2 = static_cast<float>(1.0 - b2);
    s.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
    s.eps = config_.eps;
    s.neg_step_size = static_cast<float>(-(dlr / (1.0 - std::pow(b1, t))));
  }
  for_each_chunk(chunks_, total_numel_, [&](const ParamChunk& ch, int64_t) {
    const size_t i = static_cast<size_t>(ch.param);
    kernels::adam_update(params_[i].var.value().data() + ch.begin, m_[i].data() + ch.begin,
                         v_[i].data() + ch.begin, g[i] + ch.begin, ch.end - ch.begin, scalars_[i]);
  });
  for (int64_t& t : steps_) ++t;
}

}  // namespace vit
