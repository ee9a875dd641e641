// Optimizer base: parameter groups, work chunks, zero_grad and the validated state load.
#include "optim/optimizer.hpp"

#include <unordered_map>
#include <unordered_set>

#include "core/error.hpp"

namespace vit {

const Tensor* OptimState::find_tensor(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

const int64_t* OptimState::find_int(const std::string& name) const {
  for (const auto& [n, v] : ints)
    if (n == name) return &v;
  return nullptr;
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool weight_decay_exempt(const std::string& name, const Shape& shape) {
  if (shape.size() <= 1) return true;
  if (ends_with(name, ".bias") || name == "bias") return true;
  for (const char* special : {"pos_embed", "cls_token"})
    if (name == special || ends_with(name, std::string(".") + special)) return true;
  return false;
}

std::vector<ParamChunk> make_chunks(const std::vector<NamedParam>& params, int64_t grain) {
  std::vector<ParamChunk> chunks;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t n = params[i].var.numel();
    for (int64_t lo = 0; lo < n; lo += grain)
      chunks.push_back({static_cast<int64_t>(i), lo, lo + grain < n ? lo + grain : n});
  }
  return chunks;
}

Optimizer::Optimizer(std::vector<NamedParam> params) : params_(std::move(params)) {
  std::unordered_set<std::string> seen;
  for (const NamedParam& p : params_) {
    VIT_CHECK(p.var.defined(), "optimizer: parameter '", p.name, "' is undefined");
    VIT_CHECK(seen.insert(p.name).second, "optimizer: duplicate parameter name '", p.name, "'");
    decays_.push_back(!weight_decay_exempt(p.name, p.var.shape()));
    total_numel_ += p.var.numel();
  }
  chunks_ = make_chunks(params_);
}

void Optimizer::zero_grad() {
  for (NamedParam& p : params_) p.var.zero_grad();
}

float* Optimizer::grad_data(int64_t i) { return params_[static_cast<size_t>(i)].var.grad().data(); }

void Optimizer::save_state(OptimState& out) const { export_state(out, true); }

void Optimizer::load_state(const OptimState& in) {
  OptimState expected;
  export_state(expected, false);
  std::unordered_map<std::string, const Tensor*> want_tensors;
  std::unordered_set<std::string> want_ints;
  for (const auto& [name, t] : expected.tensors) {
    const Tensor* got = in.find_tensor(name);
    if (!got) fail(ErrorKind::Data, "optimizer state: missing tensor '", name, "' (", this->name(), ")");
    if (got->shape() != t.shape())
      fail(ErrorKind::Data, "optimizer state: tensor '", name, "' has shape ", got->shape(),
           ", expected ", t.shape());
    want_tensors.emplace(name, &t);
  }
  for (const auto& [name, v] : expected.ints) {
    (void)v;
    if (!in.find_int(name)) fail(ErrorKind::Data, "optimizer state: missing counter '", name, "'");
    want_ints.insert(name);
  }
  auto ours = [](const std::string& n) { return n.rfind("optim.", 0) == 0 || n.rfind("lookahead.", 0) == 0; };
  for (const auto& [name, t] : in.tensors) {
    (void)t;
    if (ours(name) && !want_tensors.count(name))
      fail(ErrorKind::Data, "optimizer state: unexpected tensor '", name, "' for ", this->name());
  }
  for (const auto& [name, v] : in.ints) {
    if (ours(name) && !want_ints.count(name))
      fail(ErrorKind::Data, "optimizer state: unexpected counter '", name, "' for ", this->name());
    if (want_ints.count(name) && v < 0)
      fail(ErrorKind::Data, "optimizer state: counter '", name, "' is negative (", v, ")");
  }
  import_state(in);
}

void put_tensor(OptimState& out, std::string name, const Tensor& t, bool copy) {
  out.tensors.emplace_back(std::move(name), copy ? t.clone() : t);
}

void get_tensor(const OptimState& in, const std::string& name, Tensor& into) {
  const Tensor* t = in.find_tensor(name);
  VIT_ASSERT(t && t->shape() == into.shape());  // load_state validated it
  into.copy_from(*t);
}

int64_t get_int(const OptimState& in, const std::string& name) {
  const int64_t* v = in.find_int(name);
  VIT_ASSERT(v != nullptr);
  return *v;
}

}  // namespace vit
