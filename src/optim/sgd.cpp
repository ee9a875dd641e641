// SGD step: per-parameter scalars are prepared first, then one parallel pass over all chunks.
#include "optim/sgd.hpp"

#include "core/parallel.hpp"

namespace vit {

Sgd::Sgd(std::vector<NamedParam> params, const SgdConfig& config)
    : Optimizer(std::move(params)), config_(config) {
  steps_.assign(params_.size(), 0);
  scalars_.resize(params_.size());
  if (config_.momentum != 0.0f)
    for (const NamedParam& p : params_) buf_.push_back(Tensor::zeros(p.var.shape()));
}

void Sgd::step(float lr) {
  std::vector<float*> g(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    g[i] = grad_data(static_cast<int64_t>(i));
    kernels::SgdScalars& s = scalars_[i];
    s.weight_decay = decays_[i] ? config_.weight_decay : 0.0f;
    s.momentum = config_.momentum;
    s.one_minus_dampening = static_cast<float>(1.0 - static_cast<double>(config_.dampening));
    s.neg_lr = -lr;
    s.nesterov = config_.nesterov;
    s.first = steps_[i] == 0;
  }
  for_each_chunk(chunks_, total_numel_, [&](const ParamChunk& ch, int64_t) {
    const size_t i = static_cast<size_t>(ch.param);
    float* buf = buf_.empty() ? nullptr : buf_[i].data() + ch.begin;
    kernels::sgd_update(params_[i].var.value().data() + ch.begin, buf, g[i] + ch.begin,
                        ch.end - ch.begin, scalars_[i]);
  });
  for (int64_t& t : steps_) ++t;
}

void Sgd::export_state(OptimState& out, bool copy) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    out.ints.emplace_back("optim.step." + params_[i].name, steps_[i]);
    if (!buf_.empty()) put_tensor(out, "optim.momentum_buffer." + params_[i].name, buf_[i], copy);
  }
}

void Sgd::import_state(const OptimState& in) {
  for (size_t i = 0; i < params_.size(); ++i) {
    steps_[i] = get_int(in, "optim.step." + params_[i].name);
    if (!buf_.empty()) get_tensor(in, "optim.momentum_buffer." + params_[i].name, buf_[i]);
  }
}

}  // namespace vit
