// LayerNorm module: parameters plus a call to the layer_norm op.
#include "nn/layer_norm.hpp"

#include "autograd/ops.hpp"

namespace vit {

LayerNorm::LayerNorm(int64_t dim, float eps) : eps_(eps) {
  VIT_CHECK(dim > 0, "LayerNorm needs a positive width, got ", dim);
  weight_ = register_parameter("weight", Tensor::full({dim}, 1.0f));
  bias_ = register_parameter("bias", Tensor::zeros({dim}));
}

Var LayerNorm::forward(const Var& x) const { return layer_norm(x, weight_, bias_, eps_); }

}  // namespace vit
