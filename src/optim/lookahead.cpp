// Lookahead: inner step, then (every k steps) one fused parallel pass of the sync kernel.
#include "optim/lookahead.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "kernels/optim_update.hpp"

namespace vit {

// Lookahead shares the parameter list (and so the same Var storage) with its inner optimizer.
Lookahead::Lookahead(std::unique_ptr<Optimizer> inner, int64_t k, float alpha)
    : Optimizer(inner->params()), inner_(std::move(inner)), k_(k), alpha_(alpha) {
  VIT_CHECK(k_ >= 1, "lookahead: k must be >= 1, got ", k_);
  for (const NamedParam& p : params_) slow_.push_back(p.var.value().clone());
}

void Lookahead::step(float lr) {
  VIT_CHECK(!swapped_, "lookahead: step() while the slow weights are swapped in");
  inner_->step(lr);
  ++counter_;
  if (counter_ % k_ != 0) return;
  for_each_chunk(chunks_, total_numel_, [&](const ParamChunk& ch, int64_t) {
    const size_t i = static_cast<size_t>(ch.param);
    kernels::lookahead_sync(slow_[i].data() + ch.begin, params_[i].var.value().data() + ch.begin,
                            ch.end - ch.begin, alpha_);
  });
}

void Lookahead::swap_values() {
  for_each_chunk(chunks_, total_numel_, [&](const ParamChunk& ch, int64_t) {
    const size_t i = static_cast<size_t>(ch.param);
    float* fast = params_[i].var.value().data();
    std::swap_ranges(fast + ch.begin, fast + ch.end, slow_[i].data() + ch.begin);
  });
}

void Lookahead::swap_in_slow() {
  VIT_CHECK(!swapped_, "lookahead: slow weights already swapped in");
  swap_values();
  swapped_ = true;
}

void Lookahead::swap_back() {
  VIT_CHECK(swapped_, "lookahead: swap_back() without swap_in_slow()");
  swap_values();
  swapped_ = false;
}

void Lookahead::with_eval_weights(const std::function<void()>& fn) {
  swap_in_slow();
  try {
    fn();
  } catch (...) {
    swap_back();
    throw;
  }
  swap_back();
}

void Lookahead::export_state(OptimState& out, bool copy) const {
  VIT_CHECK(!swapped_, "lookahead: state export while the slow weights are swapped in");
  inner_->export_state(out, copy);
  for (size_t i = 0; i < params_.size(); ++i)
    put_tensor(out, "lookahead.slow." + params_[i].name, slow_[i], copy);
  out.ints.emplace_back("lookahead.counter", counter_);
}

void Lookahead::import_state(const OptimState& in) {
  VIT_CHECK(!swapped_, "lookahead: state import while the slow weights are swapped in");
  inner_->import_state(in);
  for (size_t i = 0; i < params_.size(); ++i) get_tensor(in, "lookahead.slow." + params_[i].name, slow_[i]);
  counter_ = get_int(in, "lookahead.counter");
}

}  // namespace vit
