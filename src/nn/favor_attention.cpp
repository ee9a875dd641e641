// FavorAttention: projection buffer management around the favor_attention op.
#include "nn/favor_attention.hpp"

#include "autograd/ops.hpp"
#include "kernels/favor.hpp"

namespace vit {

FavorAttention::FavorAttention(int64_t dim, int64_t heads, int64_t features, FavorKernel kernel,
                               float eps, float proj_dropout)
    : Attention(dim, heads, proj_dropout), kernel_(kernel), eps_(eps) {
  const int64_t d = head_dim();
  const int64_t f = features > 0 ? features : favor_default_features(d);
  VIT_CHECK(f > 0, "FAVOR+: feature count must be positive, got ", f);
  projection_ = register_buffer("projection_matrix", Tensor::zeros({f, d}));
}

void FavorAttention::redraw(Rng& rng) {
  const Tensor fresh = draw_favor_projection(features(), head_dim(), rng);
  projection_.copy_from(fresh);
}

Var FavorAttention::mix(const Var& x, const ForwardContext& ctx, uint64_t site) const {
  (void)ctx;
  (void)site;
  return favor_attention(qkv().forward(x), heads(), projection_, kernel_, eps_);
}

Var FavorAttention::mix_cls(const Var& x, const ForwardContext& ctx, uint64_t site) const {
  (void)ctx;
  (void)site;
  return favor_class_attention(qkv().forward(x), heads(), projection_, kernel_, eps_);
}

}  // namespace vit
