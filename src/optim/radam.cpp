// RAdam step: the per-parameter step count selects the phase (rectified / momentum / skip)
// before the parallel pass, so the element loops never branch on strings or settings.
#include "optim/radam.hpp"

#include <cmath>

#include "core/parallel.hpp"

namespace vit {

RAdamTerms radam_terms(double beta2, int64_t t) {
  const double step = static_cast<double>(t);
  const double bias_correction2 = 1.0 - std::pow(beta2, step);
  RAdamTerms r{};
  r.rho_inf = 2.0 / (1.0 - beta2) - 1.0;
  r.rho_t = r.rho_inf - 2.0 * step * std::pow(beta2, step) / bias_correction2;
  r.rect = r.rho_t > 4.0 ? std::sqrt((r.rho_t - 4.0) * (r.rho_t - 2.0) * r.rho_inf /
                                     ((r.rho_inf - 4.0) * (r.rho_inf - 2.0) * r.rho_t))
                         : 0.0;
  return r;
}

RAdam::RAdam(std::vector<NamedParam> params, const RAdamConfig& config)
    : MomentOptimizer(std::move(params)), config_(config) {
  scalars_.resize(params_.size());
}

void RAdam::step(float lr) {
  const double b1 = config_.beta1, b2 = config_.beta2, dlr = lr;
  std::vector<float*> g(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    g[i] = grad_data(static_cast<int64_t>(i));
    const int64_t t = steps_[i] + 1;
    const double wd = decays_[i] ? static_cast<double>(config_.weight_decay) : 0.0;
    const RAdamTerms terms = radam_terms(b2, t);
    kernels::RAdamScalars& s = scalars_[i];
    if (terms.rho_t > static_cast<double>(config_.threshold))
      s.mode = kernels::RAdamMode::Rectified;
    else
      s.mode = config_.policy == RAdamPolicy::Sgd ? kernels::RAdamMode::Momentum
                                                  : kernels::RAdamMode::MomentsOnly;
    s.decay = config_.decoupled ? static_cast<float>(1.0 - dlr * wd) : 1.0f;
    s.weight_decay = config_.decoupled ? 0.0f : static_cast<float>(wd);
    s.beta1 = config_.beta1;
    s.one_minus_beta1 = static_cast<float>(1.0 - b1);
    s.beta2 = config_.beta2;
    s.one_minus_beta2 = static_cast<float>(1.0 - b2);
    s.bias_correction1 = static_cast<float>(1.0 - std::pow(b1, static_cast<double>(t)));
    s.lr = lr;
    s.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, static_cast<double>(t))));
    s.eps = config_.eps;
    s.rect = static_cast<float>(terms.rect);
  }
  for_each_chunk(chunks_, total_numel_, [&](const ParamChunk& ch, int64_t) {
    const size_t i = static_cast<size_t>(ch.param);
    kernels::radam_update(params_[i].var.value().data() + ch.begin, m_[i].data() + ch.begin,
                          v_[i].data() + ch.begin, g[i] + ch.begin, ch.end - ch.begin, scalars_[i]);
  });
  for (int64_t& t : steps_) ++t;
}

}  // namespace vit
