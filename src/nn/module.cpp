// Module tree bookkeeping (names, train flag) and the seeded initialisers.
#include "nn/module.hpp"

#include <cmath>

#include "autograd/ops.hpp"

namespace vit {

Var maybe_dropout(const Var& x, float p, const ForwardContext& ctx, uint64_t site) {
  if (!dropout_active(p, ctx)) return x;
  Rng rng = ctx.rng(site);
  return dropout(x, p, rng);
}

Var Module::register_parameter(const std::string& name, Tensor value, Shape timm_shape) {
  for (const Param& p : params_) VIT_CHECK(p.name != name, "duplicate parameter name ", name);
  if (!timm_shape.empty())
    VIT_CHECK(shape_numel(timm_shape) == value.numel(), "timm shape ", timm_shape,
              " does not match ", value.shape(), " for ", name);
  Var v(std::move(value), true);
  params_.push_back({name, v, std::move(timm_shape)});
  return v;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  for (const NamedBuffer& b : buffers_) VIT_CHECK(b.name != name, "duplicate buffer name ", name);
  buffers_.push_back({name, value});
  return value;
}

void Module::register_module(const std::string& name, Module& child) {
  for (const auto& c : children_) VIT_CHECK(c.first != name, "duplicate module name ", name);
  children_.emplace_back(name, &child);
}

void Module::collect(const std::string& prefix, std::vector<NamedParam>* params,
                     std::vector<NamedBuffer>* buffers, std::vector<Shape>* shapes) const {
  for (const Param& p : params_) {
    if (params) params->push_back({prefix + p.name, p.var});
    if (shapes) shapes->push_back(p.timm_shape.empty() ? p.var.shape() : p.timm_shape);
  }
  if (buffers)
    for (const NamedBuffer& b : buffers_) buffers->push_back({prefix + b.name, b.tensor});
  for (const auto& c : children_) c.second->collect(prefix + c.first + ".", params, buffers, shapes);
}

std::vector<NamedParam> Module::parameters() const {
  std::vector<NamedParam> out;
  collect("", &out, nullptr, nullptr);
  return out;
}

std::vector<NamedBuffer> Module::buffers() const {
  std::vector<NamedBuffer> out;
  collect("", nullptr, &out, nullptr);
  return out;
}

Shape Module::timm_shape(const std::string& name) const {
  std::vector<NamedParam> params;
  std::vector<Shape> shapes;
  collect("", &params, nullptr, &shapes);
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == name) return shapes[i];
  fail(ErrorKind::Internal, "no parameter named ", name);
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const NamedParam& p : parameters()) n += p.var.numel();
  return n;
}

void Module::zero_grad() const {
  for (const NamedParam& p : parameters())
    if (p.var.has_grad()) p.var.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

uint64_t name_key(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void init_trunc_normal(Tensor& t, Rng& rng, float std, float lo, float hi) {
  VIT_CHECK(lo < hi && std > 0.0f, "trunc_normal needs lo < hi and std > 0");
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v;
    do {  // rejection: at std 0.02 and bounds +-2 it practically never repeats
      v = std * rng.normal();
    } while (v < lo || v > hi);
    t[i] = v;
  }
}

void init_normal(Tensor& t, Rng& rng, float std) {
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = std * rng.normal();
}

void init_uniform(Tensor& t, Rng& rng, float lo, float hi) {
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = lo + (hi - lo) * rng.uniform();
}

}  // namespace vit
