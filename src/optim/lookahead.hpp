// Lookahead (Zhang et al. 2019) around any Optimizer. Slow weights phi start as a copy of the
// parameters at construction; after every k-th inner step phi += alpha * (theta - phi) and the
// fast weights theta are reset to phi. The inner optimizer's state (moments, buffers, step
// counts) is kept across syncs, as timm and Ranger do. The default k is 5 (ensmallen, Paddle);
// timm and Ranger use k = 6.
//
// Evaluation: timm's sync_lookahead() (called before every eval) performs an extra, off-cadence
// sync that moves phi toward theta and so changes the training trajectory. We do not. For eval
// and `best` checkpoints, swap_in_slow() exchanges the parameter values with phi (the slow
// weights as of the last sync, i.e. the weights Lookahead itself would restart from), the caller
// evaluates / saves, and swap_back() restores theta bit for bit. with_eval_weights(fn) wraps the
// pair and swaps back even if fn throws. step() must not be called while swapped in.
#pragma once
#include <memory>

#include "optim/optimizer.hpp"

namespace vit {

class Lookahead final : public Optimizer {
 public:
  Lookahead(std::unique_ptr<Optimizer> inner, int64_t k, float alpha);
  void step(float lr) override;
  const char* name() const override { return "lookahead"; }

  void swap_in_slow();
  void swap_back();
  bool swapped() const { return swapped_; }
  void with_eval_weights(const std::function<void()>& fn) override;

  Optimizer& inner() { return *inner_; }
  const std::vector<Tensor>& slow() const { return slow_; }
  int64_t counter() const { return counter_; }

 protected:
  void export_state(OptimState& out, bool copy) const override;
  void import_state(const OptimState& in) override;

 private:
  void swap_values();

  std::unique_ptr<Optimizer> inner_;
  int64_t k_;
  float alpha_;
  std::vector<Tensor> slow_;  // phi, one per parameter
  int64_t counter_ = 0;       // inner steps taken so far (sync when counter % k == 0)
  bool swapped_ = false;
};

}  // namespace vit
