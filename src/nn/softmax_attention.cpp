// SoftmaxAttention: attention dropout is keyed by (seed, step, site) and only active in training;
// without it the projection and attention are one op (qkv_attention: backward in cache), and
// for the class token's row alone qkv_class_attention (its query only: O(N) per head).
#include "nn/softmax_attention.hpp"

#include "autograd/ops.hpp"

namespace vit {

SoftmaxAttention::SoftmaxAttention(int64_t dim, int64_t heads, float attn_dropout,
                                   float proj_dropout)
    : Attention(dim, heads, proj_dropout), attn_dropout_(attn_dropout) {}

Var SoftmaxAttention::mix(const Var& x, const ForwardContext& ctx, uint64_t site) const {
  const float p = ctx.training ? attn_dropout_ : 0.0f;
  if (p == 0.0f) return qkv_attention(x, qkv().weight(), qkv().bias(), heads());
  return attention(qkv().forward(x), heads(), p, ctx.key(site));
}

Var SoftmaxAttention::mix_cls(const Var& x, const ForwardContext& ctx, uint64_t site) const {
  if (ctx.training && attn_dropout_ > 0.0f) return Attention::mix_cls(x, ctx, site);
  return qkv_class_attention(x, qkv().weight(), qkv().bias(), heads());
}

}  // namespace vit
