// Mlp forward: with a residual and no active dropout the whole block is one op (mlp_residual);
// otherwise fused fc1+GELU, then fc2, dropouts keyed by site.
#include "nn/mlp.hpp"

#include "autograd/ops.hpp"

namespace vit {

Mlp::Mlp(int64_t dim, int64_t hidden, float dropout)
    : fc1_(dim, hidden), fc2_(hidden, dim), dropout_(dropout) {
  register_module("fc1", fc1_);
  register_module("fc2", fc2_);
}

Var Mlp::forward(const Var& x, const ForwardContext& ctx, uint64_t site,
                 const Var& residual) const {
  if (residual.defined() && !dropout_active(dropout_, ctx))
    return mlp_residual(x, fc1_.weight(), fc1_.bias(), fc2_.weight(), fc2_.bias(), residual);
  Var h = maybe_dropout(fc1_.forward_gelu(x), dropout_, ctx, site);
  Var out = maybe_dropout(fc2_.forward(h), dropout_, ctx, site + 1);
  return residual.defined() ? add(residual, out) : out;
}

}  // namespace vit
