// ViT / Performer: construction, timm init, forward, FAVOR+ redraw policy and the state dict.
#include "nn/vit.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "autograd/ops.hpp"
#include "nn/favor_attention.hpp"
#include "nn/softmax_attention.hpp"

namespace vit {

void validate(const ModelConfig& c) {
  auto need = [](bool ok, const auto&... what) {
    if (!ok) fail(ErrorKind::Config, "model config: ", what...);
  };
  need(c.image_size > 0 && c.channels > 0 && c.num_classes > 0 && c.dim > 0 && c.depth > 0 &&
           c.heads > 0 && c.patch_size > 0,
       "sizes must be positive");
  need(c.image_size % c.patch_size == 0, "image_size ", c.image_size,
       " is not a multiple of patch_size ", c.patch_size);
  need(c.dim % c.heads == 0, "dim ", c.dim, " is not divisible by heads ", c.heads);
  need(c.mlp_hidden() > 0, "mlp_ratio ", c.mlp_ratio, " gives no hidden units");
  auto prob = [](float p) { return p >= 0.0f && p < 1.0f; };
  need(prob(c.dropout) && prob(c.attn_dropout) && prob(c.drop_path),
       "dropout rates must be in [0, 1)");
  need(c.favor.features >= 0 && c.favor.redraw_interval >= 0 && c.favor.eps >= 0.0f,
       "favor settings must be non-negative");
}

// ---------------------------------------------------------------- Block
namespace {
std::unique_ptr<Attention> make_attention(const ModelConfig& c) {
  if (c.attention == AttentionKind::Favor)
    return std::make_unique<FavorAttention>(c.dim, c.heads, c.favor.features, c.favor.kernel,
                                            c.favor.eps, c.dropout);
  return std::make_unique<SoftmaxAttention>(c.dim, c.heads, c.attn_dropout, c.dropout);
}

Var maybe_drop_path(const Var& x, float p, const ForwardContext& ctx, uint64_t site) {
  if (!dropout_active(p, ctx)) return x;
  Rng rng = ctx.rng(site);
  return drop_path(x, p, rng);
}

constexpr uint64_t kSitesPerLayer = 8;
}  // namespace

Block::Block(const ModelConfig& c, float drop_path)
    : norm1_(c.dim, c.ln_eps),
      attn_(make_attention(c)),
      norm2_(c.dim, c.ln_eps),
      mlp_(c.dim, c.mlp_hidden(), c.dropout),
      drop_path_(drop_path) {
  register_module("norm1", norm1_);
  register_module("attn", *attn_);
  register_module("norm2", norm2_);
  register_module("mlp", mlp_);
}

Var Block::forward(const Var& x, const ForwardContext& ctx, int64_t layer, bool cls_only) const {
  const uint64_t site = kSitesPerLayer * static_cast<uint64_t>(layer + 1);
  auto attend = [&](const Var& residual) {  // sites +0, +1
    return cls_only ? attn_->forward_cls(norm1_.forward(x), ctx, site, residual)
                    : attn_->forward(norm1_.forward(x), ctx, site, residual);
  };
  const Var skip = cls_only ? select_token(x, 0) : x;
  if (!dropout_active(drop_path_, ctx)) {  // the residual adds fused into proj's and fc2's GEMMs
    Var y = attend(skip);
    return mlp_.forward(norm2_.forward(y), ctx, site + 2, y);         // sites +2, +3
  }
  Var y = add(skip, maybe_drop_path(attend(Var()), drop_path_, ctx, site + 4));
  Var h = mlp_.forward(norm2_.forward(y), ctx, site + 2);
  return add(y, maybe_drop_path(h, drop_path_, ctx, site + 5));
}

// ---------------------------------------------------------------- ViT
ViT::ViT(const ModelConfig& config, uint64_t seed)
    : config_((validate(config), config)),
      seed_(seed),
      patch_embed_(config.channels, config.patch_size, config.dim),
      head_(config.dim, config.num_classes) {
  const ModelConfig& c = config_;
  // timm registration order: cls_token, pos_embed, patch_embed, blocks, norm, fc_norm, head
  cls_token_ = register_parameter("cls_token", Tensor::zeros({1, 1, c.dim}));
  pos_embed_ = register_parameter("pos_embed", Tensor::zeros({1, c.num_patches() + 1, c.dim}));
  register_module("patch_embed", patch_embed_);
  for (int64_t l = 0; l < c.depth; ++l) {
    // stochastic depth linear over depth, as torch.linspace(0, rate, depth)
    const float rate =
        c.depth > 1 ? c.drop_path * static_cast<float>(l) / static_cast<float>(c.depth - 1) : 0.0f;
    blocks_.push_back(std::make_unique<Block>(c, rate));
    register_module("blocks." + std::to_string(l), *blocks_.back());
  }
  if (c.pool == Pooling::Cls) {
    norm_ = std::make_unique<LayerNorm>(c.dim, c.ln_eps);
    register_module("norm", *norm_);
  } else {
    fc_norm_ = std::make_unique<LayerNorm>(c.dim, c.ln_eps);
    register_module("fc_norm", *fc_norm_);
  }
  register_module("head", head_);
  reset_parameters(seed);
  if (c.attention == AttentionKind::Favor) redraw_projections(seed, 0);
}

void ViT::reset_parameters(uint64_t seed) {
  const float patch_bound =
      1.0f / std::sqrt(static_cast<float>(config_.channels * config_.patch_size * config_.patch_size));
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (NamedParam& p : parameters()) {
    Tensor& t = p.var.value();
    Rng rng(seed, RngPurpose::Init, name_key(p.name), 0);
    const bool is_norm = p.name.find("norm") != std::string::npos;  // norm1, norm2, norm, fc_norm
    if (p.name == "cls_token") {
      init_normal(t, rng, 1e-6f);
    } else if (p.name == "pos_embed") {
      init_trunc_normal(t, rng, 0.02f, -2.0f, 2.0f);
    } else if (p.name.rfind("patch_embed.proj.", 0) == 0) {
      init_uniform(t, rng, -patch_bound, patch_bound);  // Conv2d default, kept by timm
    } else if (is_norm) {
      t.fill(ends_with(p.name, ".weight") ? 1.0f : 0.0f);
    } else if (ends_with(p.name, ".weight")) {
      init_trunc_normal(t, rng, 0.02f, -2.0f, 2.0f);  // every Linear: qkv, proj, fc1, fc2, head
    } else {
      t.fill(0.0f);  // Linear biases
    }
  }
}

Var ViT::forward(const Tensor& images, int64_t step) {
  const ModelConfig& c = config_;
  VIT_CHECK(images.dim() == 4 && images.size(1) == c.channels && images.size(2) == c.image_size &&
                images.size(3) == c.image_size,
            "ViT: images ", images.shape(), " must be [B, ", c.channels, ", ", c.image_size, ", ",
            c.image_size, "]");
  const ForwardContext ctx{is_training(), seed_, step};
  Var x = patch_embed_.forward(Var(images));       // [B, N, D]
  x = add(concat_cls(cls_token_, x), pos_embed_);  // [B, N+1, D]
  x = maybe_dropout(x, c.dropout, ctx, 0);
  const int64_t last = depth() - 1;
  for (int64_t l = 0; l < last; ++l) x = blocks_[static_cast<size_t>(l)]->forward(x, ctx, l);
  Var pooled;                                      // [B, D]
  if (c.pool == Pooling::Cls) {
    // Only the class token reaches the head, and everything after the last block's attention
    // (projection, LN2, MLP, the final LayerNorm) is per token: computing that token's row
    // alone equals timm's compute-all-then-select.
    pooled = norm_->forward(blocks_.back()->forward(x, ctx, last, true));
  } else {
    x = blocks_.back()->forward(x, ctx, last);
    // mean over patch tokens 1..N = ((N+1) mean_all - token_0) / N
    const float n = static_cast<float>(c.num_patches());
    pooled = add(scale(mean_tokens(x), (n + 1.0f) / n), scale(select_token(x, 0), -1.0f / n));
    pooled = fc_norm_->forward(pooled);
  }
  return head_.forward(pooled);
}

Var ViT::loss(const Var& logits, const std::vector<int32_t>& labels, float smoothing) {
  return cross_entropy(logits, labels, smoothing);
}

// ---------------------------------------------------------------- FAVOR+ redraws
bool ViT::maybe_redraw(int64_t step, uint64_t seed) {
  const int64_t interval = config_.favor.redraw_interval;
  if (config_.attention != AttentionKind::Favor || !is_training() || interval <= 0) return false;
  VIT_CHECK(step >= 0, "maybe_redraw: negative step ", step);
  const int64_t count = step / interval;
  if (count == favor_redraws_) return false;
  redraw_projections(seed, count);
  return true;
}

void ViT::redraw_projections(uint64_t seed, int64_t count) {
  VIT_CHECK(config_.attention == AttentionKind::Favor, "redraw_projections: not a FAVOR+ model");
  VIT_CHECK(count >= 0, "redraw_projections: negative count ", count);
  for (int64_t l = 0; l < depth(); ++l) {
    Rng rng(seed, RngPurpose::Favor, static_cast<uint64_t>(count), static_cast<uint64_t>(l));
    static_cast<FavorAttention&>(block(l).attn()).redraw(rng);
  }
  favor_redraws_ = count;
}

// ---------------------------------------------------------------- state dict
namespace {
const char* kRedrawsName = "favor_redraws";

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << s;
  return os.str();
}
}  // namespace

StateDict ViT::state_dict(bool timm_layout) const {
  StateDict out;
  for (const NamedParam& p : parameters()) {
    const Tensor& v = p.var.value();
    out.emplace_back(p.name, timm_layout ? v.reshape(timm_shape(p.name)) : v);
  }
  for (const NamedBuffer& b : buffers()) out.emplace_back(b.name, b.tensor);
  if (config_.attention == AttentionKind::Favor)
    out.emplace_back(kRedrawsName, Tensor::full({1}, static_cast<float>(favor_redraws_)));
  return out;
}

void ViT::load_state_dict(const StateDict& state, bool strict) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < state.size(); ++i)
    if (!index.emplace(state[i].first, i).second)
      fail(ErrorKind::Data, "state dict: duplicate tensor '", state[i].first, "'");

  struct Target {
    std::string name;
    Tensor dest;
    Shape alt;  // a second accepted shape (timm layout), or empty
  };
  std::vector<Target> targets;
  for (const NamedParam& p : parameters()) {
    const Shape ts = timm_shape(p.name);
    targets.push_back({p.name, p.var.value(), ts == p.var.shape() ? Shape{} : ts});
  }
  for (const NamedBuffer& b : buffers()) targets.push_back({b.name, b.tensor, {}});
  int64_t new_redraws = favor_redraws_;
  if (config_.attention == AttentionKind::Favor) {
    targets.push_back({kRedrawsName, Tensor::zeros({1}), {}});
    auto it = index.find(kRedrawsName);
    if (it != index.end() && it->second < state.size() && state[it->second].second.numel() == 1) {
      const float v = state[it->second].second[0];
      if (!(v >= 0.0f && v == std::floor(v)))
        fail(ErrorKind::Data, "state dict: '", kRedrawsName, "' must be a count, got ", v);
      new_redraws = static_cast<int64_t>(v);
    }
  }

  // Validate everything first, so a failed load leaves the model untouched.
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  for (const Target& t : targets) {
    auto it = index.find(t.name);
    if (it == index.end()) {
      if (strict) fail(ErrorKind::Data, "state dict: missing tensor '", t.name, "' (shape ",
                       shape_str(t.dest.shape()), ")");
      continue;
    }
    const Tensor& src = state[it->second].second;
    if (src.shape() != t.dest.shape() && (t.alt.empty() || src.shape() != t.alt))
      fail(ErrorKind::Data, "state dict: wrong shape for '", t.name, "': checkpoint ",
           shape_str(src.shape()), ", model ", shape_str(t.dest.shape()),
           t.alt.empty() ? "" : " (or " + shape_str(t.alt) + ")");
    copies.emplace_back(t.dest, &src);
    index.erase(it);
  }
  if (strict && !index.empty()) {
    size_t first_index = state.size();  // the first leftover in the caller's order
    for (const auto& kv : index) first_index = std::min(first_index, kv.second);
    const auto& first = state[first_index];
    fail(ErrorKind::Data, "state dict: unexpected tensor '", first.first, "' (shape ",
         shape_str(first.second.shape()), ")");
  }
  for (auto& c : copies) c.first.copy_from(*c.second);
  favor_redraws_ = new_redraws;
}

}  // namespace vit
