// The Optimizer interface over named parameters, the checkpoint state format (OptimState) and
// the parameter groups (which tensors get weight decay). Concrete optimizers live in sgd/adam/
// radam/lookahead; make_optimizer.hpp builds a chain from OptimSettings. This file does not
// know about schedules (the trainer passes each step's lr) or about files on disk.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"
#include "core/parallel.hpp"
#include "core/tensor.hpp"

namespace vit {

// Optimizer state for checkpoints: named float tensors plus named integer counters. Names:
// `optim.exp_avg.<param>`, `optim.exp_avg_sq.<param>`, `optim.momentum_buffer.<param>`,
// `optim.step.<param>` (int), `lookahead.slow.<param>`, `lookahead.counter` (int).
struct OptimState {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::vector<std::pair<std::string, int64_t>> ints;

  const Tensor* find_tensor(const std::string& name) const;  // nullptr if absent
  const int64_t* find_int(const std::string& name) const;
};

// timm's filter_bias_and_bn + no_weight_decay(): no decay for tensors with <= 1 dims, names
// ending in `.bias`, and `pos_embed` / `cls_token` (alone or as the last dotted component).
bool weight_decay_exempt(const std::string& name, const Shape& shape);

// A contiguous element range of one parameter: the unit of parallel work in a fused step.
// The list depends only on the parameter sizes, never on the thread count.
struct ParamChunk {
  int64_t param;
  int64_t begin, end;
};
std::vector<ParamChunk> make_chunks(const std::vector<NamedParam>& params, int64_t grain = 16384);

// Run fn(chunk) over all chunks: in parallel, or on the calling thread when there are fewer
// than `serial_below` elements in all (starting threads costs more than such a step). Each
// element is updated by exactly one call either way, so results do not depend on threads.
template <typename F>
void for_each_chunk(const std::vector<ParamChunk>& chunks, int64_t total_numel, F&& fn,
                    int64_t serial_below = 32768) {
  const int64_t n = static_cast<int64_t>(chunks.size());
  if (total_numel < serial_below) {
    for (int64_t c = 0; c < n; ++c) fn(chunks[static_cast<size_t>(c)], c);
    return;
  }
  parallel_for(0, n, [&](int64_t c) { fn(chunks[static_cast<size_t>(c)], c); });
}

class Optimizer {
 public:
  explicit Optimizer(std::vector<NamedParam> params);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter from its current gradient (a parameter without a gradient
  // buffer is treated as having a zero gradient). lr comes from the schedule.
  virtual void step(float lr) = 0;
  void zero_grad();

  // Deep copies of every state tensor and counter (safe to keep while training goes on).
  void save_state(OptimState& out) const;
  // Checks that every entry this chain expects is present with the right shape and that no
  // unknown `optim.` / `lookahead.` entry is there (vit::Error Data naming the entry), then
  // copies the values into the existing buffers (references held elsewhere stay valid).
  void load_state(const OptimState& in);

  // Runs fn with the weights that evaluation and `best` checkpoints should see: for Lookahead
  // the slow weights (swapped in and back, see lookahead.hpp), otherwise the parameters as
  // they are. Never changes the training trajectory.
  virtual void with_eval_weights(const std::function<void()>& fn) { fn(); }

  const std::vector<NamedParam>& params() const { return params_; }
  // Per-parameter weight decay factor mask: 1 where decay applies, 0 where exempt.
  const std::vector<bool>& decays() const { return decays_; }
  virtual const char* name() const = 0;

 protected:
  friend class Lookahead;  // forwards export/import to its inner optimizer
  // Append the state (copy = false: shallow references, used for validation) to out.
  virtual void export_state(OptimState& out, bool copy) const = 0;
  // Copy validated values from in into the state buffers.
  virtual void import_state(const OptimState& in) = 0;
  float* grad_data(int64_t i);  // allocates a zero gradient if the parameter has none

  std::vector<NamedParam> params_;
  std::vector<bool> decays_;
  std::vector<ParamChunk> chunks_;
  int64_t total_numel_ = 0;
};

// Helpers shared by the concrete optimizers.
void put_tensor(OptimState& out, std::string name, const Tensor& t, bool copy);
void get_tensor(const OptimState& in, const std::string& name, Tensor& into);  // validated
int64_t get_int(const OptimState& in, const std::string& name);

}  // namespace vit
