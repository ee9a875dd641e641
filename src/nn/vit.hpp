// Vision Transformer as timm's VisionTransformer (class token, learned position embedding with
// the cls slot, pre-norm blocks, final norm, linear head), with timm's parameter names. The
// Performer is this same model built with FavorAttention (ModelConfig::attention = Favor).
// Pooling: Cls = timm global_pool='token' (norm, then head on token 0); Mean = timm 'avg' (mean
// over the patch tokens, cls excluded, then `fc_norm` and head; there is no `norm` then). With
// Cls pooling only token 0 reaches the head, so the last block computes only that token's row
// after its keys and values (the same values as timm's compute-all-then-select).
// Not here: LayerScale, distillation tokens, the optimiser, checkpoint files (train/).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/attention.hpp"
#include "nn/layer_norm.hpp"
#include "nn/mlp.hpp"
#include "nn/model_config.hpp"
#include "nn/patch_embed.hpp"

namespace vit {

// Named tensors in model order: the checkpoint / export payload.
using StateDict = std::vector<std::pair<std::string, Tensor>>;

// Pre-norm block: x += DropPath(Attn(LN(x))); x += DropPath(MLP(LN(x))).
class Block : public Module {
 public:
  Block(const ModelConfig& config, float drop_path);
  // x [B, N, D] -> [B, N, D]; random masks keyed by sites 8 (layer + 1) + 0..5. With cls_only,
  // only the class token's output row [B, D]: attention reads every token's keys and values,
  // while the projection, LN2 and the MLP run on that row alone.
  Var forward(const Var& x, const ForwardContext& ctx, int64_t layer, bool cls_only = false) const;
  Attention& attn() { return *attn_; }
  const Attention& attn() const { return *attn_; }
  float drop_path() const { return drop_path_; }

 private:
  LayerNorm norm1_;
  std::unique_ptr<Attention> attn_;
  LayerNorm norm2_;
  Mlp mlp_;
  float drop_path_;
};

class ViT : public Module {
 public:
  // Builds and initialises (reset_parameters(seed)); FAVOR+ projections get redraw count 0.
  // `seed` also keys the dropout / drop-path masks of forward().
  ViT(const ModelConfig& config, uint64_t seed);

  // images [B, C, H, W] -> logits [B, K]. `step` keys this pass's dropout masks (training only):
  // Rng(seed, Dropout, step, site), so a resumed run reproduces them.
  Var forward(const Tensor& images, int64_t step);
  // Mean cross-entropy with label smoothing (timm's formula) -> [1].
  static Var loss(const Var& logits, const std::vector<int32_t>& labels, float smoothing = 0.0f);

  // timm's default ('') init: Linear weights and pos_embed trunc_normal(std .02, bounds +-2
  // absolute), cls_token normal(std 1e-6), biases 0, LayerNorm 1/0, patch_embed.proj as
  // PyTorch's Conv2d default (U(+-1/sqrt(C*P*P)) for weight and bias). Each parameter draws
  // from Rng(seed, Init, name_key(name)).
  void reset_parameters(uint64_t seed);

  // FAVOR+ redraw policy. In training mode, makes the projections those of redraw count
  // step / redraw_interval, drawing them from Rng(seed, Favor, count, layer) when the count
  // changes; so they redraw exactly every redraw_interval training steps, and the projection
  // is a pure function of (seed, count). No-op in eval, for softmax models, or interval 0.
  // Returns whether it redrew.
  bool maybe_redraw(int64_t step, uint64_t seed);
  // Set every layer's projection to that of (seed, count) and the counter to `count`.
  void redraw_projections(uint64_t seed, int64_t count);
  int64_t favor_redraws() const { return favor_redraws_; }

  // Parameters, buffers (blocks.i.attn.projection_matrix) and, for FAVOR+ models, the counter
  // `favor_redraws` ([1], as float). Tensors share storage with the model (clone to snapshot).
  // timm_layout: patch_embed.proj.weight as [D, C, P, P] (else [D, C*P*P]).
  StateDict state_dict(bool timm_layout) const;
  // Checks every name and shape before copying anything; throws Error(Data) naming the first
  // mismatch: missing or unexpected (strict only), or wrong shape (always; both shapes given).
  // Either layout of the patch weight is accepted.
  void load_state_dict(const StateDict& state, bool strict = true);

  const ModelConfig& config() const { return config_; }
  uint64_t seed() const { return seed_; }
  int64_t depth() const { return static_cast<int64_t>(blocks_.size()); }
  Block& block(int64_t i) { return *blocks_.at(static_cast<size_t>(i)); }

 private:
  ModelConfig config_;
  uint64_t seed_;
  PatchEmbed patch_embed_;
  Var cls_token_;  // [1, 1, D]
  Var pos_embed_;  // [1, N + 1, D]
  std::vector<std::unique_ptr<Block>> blocks_;
  std::unique_ptr<LayerNorm> norm_;     // Cls pooling
  std::unique_ptr<LayerNorm> fc_norm_;  // Mean pooling
  Linear head_;
  int64_t favor_redraws_ = 0;
};

// Throws Error(Config) when the sizes do not fit together (patch vs image, heads vs dim, ...).
void validate(const ModelConfig& config);

}  // namespace vit
