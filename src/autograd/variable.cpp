#include "autograd/variable.hpp"

namespace vit {
namespace {

struct Node {
  std::shared_ptr<VarData> out;
  BackwardFn backward;
  const char* name;
};

struct Tape {
  std::vector<Node> nodes;
  bool grad_enabled = true;
};

Tape& tape() {
  thread_local Tape t;
  return t;
}

}  // namespace

Var::Var(Tensor value, bool requires_grad) : data_(std::make_shared<VarData>()) {
  data_->value = std::move(value);
  data_->requires_grad = requires_grad;
}

Tensor& Var::grad() const {
  if (!data_->grad.defined()) data_->grad = Tensor::zeros(data_->value.shape());
  return data_->grad;
}

float* Var::grad_for_write(bool& fresh) const {
  fresh = !data_->grad.defined();
  if (fresh) data_->grad = Tensor::empty(data_->value.shape());
  return data_->grad.data();
}

bool Var::adopt_grad(const Tensor& dout) const {
  if (!data_->op_output || data_->grad.defined() || dout.shape() != data_->value.shape())
    return false;
  data_->grad = dout;
  return true;
}

void Var::zero_grad() const {
  if (data_->grad.defined()) data_->grad.fill(0.0f);
}

template <typename Inputs>
static Var record_impl(Tensor out, const Inputs& inputs, BackwardFn fn, const char* name) {
  bool needs = false;
  if (tape().grad_enabled)
    for (const Var& v : inputs) needs = needs || v.requires_grad();
  Var result(std::move(out), needs);
  if (needs) {
    result.data()->op_output = true;
    // The node keeps the output's data alive: its grad is read when the node is replayed.
    tape().nodes.push_back(Node{result.data(), std::move(fn), name});
  }
  return result;
}

Var record(Tensor out, std::initializer_list<Var> inputs, BackwardFn fn, const char* name) {
  return record_impl(std::move(out), inputs, std::move(fn), name);
}

Var record(Tensor out, const std::vector<Var>& inputs, BackwardFn fn, const char* name) {
  return record_impl(std::move(out), inputs, std::move(fn), name);
}

void backward(const Var& root) {
  VIT_CHECK(root.numel() == 1, "backward() without a seed needs a single-element root, got shape ",
            root.shape());
  backward(root, Tensor::full(root.shape(), 1.0f));
}

void backward(const Var& root, const Tensor& seed) {
  VIT_CHECK(seed.shape() == root.shape(), "backward seed shape ", seed.shape(), " != root shape ",
            root.shape());
  Var r = root;
  if (!r.requires_grad()) {
    clear_tape();
    return;
  }
  Tensor& g = r.grad();
  for (int64_t i = 0; i < g.numel(); ++i) g[i] += seed[i];
  auto& nodes = tape().nodes;
  // Replay newest first; free each node right after it ran so activations die early.
  for (size_t i = nodes.size(); i-- > 0;) {
    Node node = std::move(nodes[i]);
    nodes.pop_back();
    if (node.out->grad.defined()) node.backward(node.out->grad);
  }
  nodes.clear();
}

bool grad_enabled() { return tape().grad_enabled; }
void clear_tape() { tape().nodes.clear(); }
size_t tape_size() { return tape().nodes.size(); }

NoGradGuard::NoGradGuard() : previous_(tape().grad_enabled) { tape().grad_enabled = false; }
NoGradGuard::~NoGradGuard() { tape().grad_enabled = previous_; }

}  // namespace vit
