// Module: a node in the model tree that owns named parameters (trainable leaf Vars), named
// buffers (tensors saved with the model but not trained, e.g. the FAVOR+ projection) and child
// modules. Names are timm's dotted paths (`blocks.3.attn.qkv.weight`) and are the checkpoint keys.
// Not here: the forward pass (each layer defines its own signature) and any optimiser state.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"
#include "core/rng.hpp"

namespace vit {

// A non-trained tensor with its dotted name. `tensor` shares storage with the module's buffer,
// so writing into it (copy_from) updates the model.
struct NamedBuffer {
  std::string name;
  Tensor tensor;
};

// What one forward pass needs besides its input: train/eval and the keys of its random masks.
// Dropout streams are Rng(seed, Dropout, step, site), one `site` per dropout call, so a resumed
// run re-creates the same masks from (seed, step).
struct ForwardContext {
  bool training = false;
  uint64_t seed = 0;
  int64_t step = 0;
  Rng rng(uint64_t site) const {
    return Rng(seed, RngPurpose::Dropout, static_cast<uint64_t>(step), site);
  }
  // A 64-bit key for ops that hash their own masks (attention dropout).
  uint64_t key(uint64_t site) const {
    return mix64(mix64(seed ^ 0x6174746eULL) ^ mix64(static_cast<uint64_t>(step) * 0x9e37ULL + site));
  }
};

// Whether a dropout (or drop path) of rate p does anything: training and p > 0.
inline bool dropout_active(float p, const ForwardContext& ctx) { return ctx.training && p > 0.0f; }
// Dropout that is the identity in eval or at p = 0 (records nothing then).
Var maybe_dropout(const Var& x, float p, const ForwardContext& ctx, uint64_t site);

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;             // children are registered by address
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, dotted names, registration order.
  std::vector<NamedParam> parameters() const;
  // Every buffer, same naming.
  std::vector<NamedBuffer> buffers() const;
  // The shape a parameter has in timm checkpoints (e.g. the patch conv [D, C, P, P]); equals
  // its in-memory shape unless registered otherwise. Memory order is the same either way.
  Shape timm_shape(const std::string& name) const;
  int64_t num_parameters() const;
  void zero_grad() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

 protected:
  // `timm_shape` empty: same as the tensor's shape.
  Var register_parameter(const std::string& name, Tensor value, Shape timm_shape = {});
  Tensor register_buffer(const std::string& name, Tensor value);
  void register_module(const std::string& name, Module& child);

 private:
  struct Param {
    std::string name;
    Var var;
    Shape timm_shape;
  };
  void collect(const std::string& prefix, std::vector<NamedParam>* params,
               std::vector<NamedBuffer>* buffers, std::vector<Shape>* shapes) const;

  std::vector<Param> params_;
  std::vector<NamedBuffer> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

// ---- initialisation (all from Rng(seed, Init, name_key(name), 0)) ----
// A stable 64-bit key for a parameter name (FNV-1a), so each parameter's init stream depends on
// its name only, not on registration order or on the other parameters.
uint64_t name_key(const std::string& name);
// N(0, std^2) truncated to [lo, hi] (absolute bounds, as torch.nn.init.trunc_normal_).
void init_trunc_normal(Tensor& t, Rng& rng, float std, float lo, float hi);
void init_normal(Tensor& t, Rng& rng, float std);
void init_uniform(Tensor& t, Rng& rng, float lo, float hi);

}  // namespace vit
