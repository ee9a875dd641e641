// The forward path shared by every attention implementation.
#include "nn/attention.hpp"

#include "autograd/ops.hpp"

namespace vit {

Attention::Attention(int64_t dim, int64_t heads, float proj_dropout)
    : dim_(dim), heads_(heads), proj_dropout_(proj_dropout), qkv_(dim, 3 * dim), proj_(dim, dim) {
  VIT_CHECK(heads > 0 && dim % heads == 0, "attention: dim ", dim, " is not divisible by heads ",
            heads);
  register_module("qkv", qkv_);
  register_module("proj", proj_);
}

Var Attention::forward(const Var& x, const ForwardContext& ctx, uint64_t site,
                       const Var& residual) const {
  return project(mix(x, ctx, site), ctx, site, residual);
}

Var Attention::forward_cls(const Var& x, const ForwardContext& ctx, uint64_t site,
                           const Var& residual) const {
  return project(mix_cls(x, ctx, site), ctx, site, residual);
}

Var Attention::mix_cls(const Var& x, const ForwardContext& ctx, uint64_t site) const {
  return select_token(mix(x, ctx, site), 0);
}

Var Attention::project(const Var& mixed, const ForwardContext& ctx, uint64_t site,
                       const Var& residual) const {
  if (residual.defined() && !dropout_active(proj_dropout_, ctx))
    return proj_.forward_residual(mixed, residual);
  Var out = maybe_dropout(proj_.forward(mixed), proj_dropout_, ctx, site + 1);
  return residual.defined() ? add(residual, out) : out;
}

}  // namespace vit
