// Tape-based reverse-mode autograd. A Var holds a value, its gradient (allocated on first use)
// and whether it needs one. Ops (autograd/ops.hpp) compute their output with a forward kernel and,
// right beside it, record a backward closure on the thread's tape. backward() replays the tape
// in reverse, accumulating into the inputs' gradients (+=), then clears it. Parameters are leaf
// Vars with requires_grad; their gradients accumulate across backward() calls until zeroed.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace vit {

struct VarData {
  Tensor value;
  Tensor grad;  // undefined until the first accumulation
  bool requires_grad = false;
  bool op_output = false;  // made by a recorded op (not a leaf such as a parameter)
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);

  bool defined() const { return data_ != nullptr; }
  const Tensor& value() const { return data_->value; }
  Tensor& value() { return data_->value; }
  const Shape& shape() const { return data_->value.shape(); }
  int64_t size(int64_t i) const { return data_->value.size(i); }
  int64_t numel() const { return data_->value.numel(); }
  bool requires_grad() const { return data_ && data_->requires_grad; }
  void set_requires_grad(bool on) { data_->requires_grad = on; }

  bool has_grad() const { return data_->grad.defined(); }
  // The gradient buffer, zero-filled on first use.
  Tensor& grad() const;
  // For a backward that writes every element of the gradient: the buffer, left uninitialised
  // when nothing has been accumulated yet, in which case `fresh` is set and the op must store
  // rather than add (saves the zero fill and a read of the buffer).
  float* grad_for_write(bool& fresh) const;
  // For a backward whose input gradient equals dout (a residual add): an op output with no
  // gradient yet takes dout's buffer as its gradient instead of a copy, and true is returned;
  // otherwise nothing happens. dout's owner is done with it (the tape runs an op's backward
  // after all its consumers'), but the buffer may now be accumulated into, so one dout is
  // handed to one input at most. Leaves (parameters) always keep buffers of their own.
  bool adopt_grad(const Tensor& dout) const;
  void zero_grad() const;  // keeps the buffer, fills with 0

  bool same(const Var& other) const { return data_ == other.data_; }
  const std::shared_ptr<VarData>& data() const { return data_; }

 private:
  std::shared_ptr<VarData> data_;
};

// A trainable tensor with its timm-style dotted name (the checkpoint key).
struct NamedParam {
  std::string name;
  Var var;
};

using BackwardFn = std::function<void(const Tensor& dout)>;

// Record an op's result. If grad mode is on and any input requires a gradient, the output
// requires one and `backward` (given d(loss)/d(output)) is replayed by backward().
// `name` is a debug label only: it never selects behaviour.
Var record(Tensor out, std::initializer_list<Var> inputs, BackwardFn backward, const char* name);
Var record(Tensor out, const std::vector<Var>& inputs, BackwardFn backward, const char* name);

// Seed d(root) = 1 (root must have one element) or `seed`, replay the tape, clear it.
void backward(const Var& root);
void backward(const Var& root, const Tensor& seed);

bool grad_enabled();
// Drop every recorded op without running it (e.g. after an aborted step).
void clear_tape();
size_t tape_size();

// While alive, ops record nothing (eval, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace vit
