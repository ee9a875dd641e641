// Linear layer: parameter registration and the two forward flavours.
#include "nn/linear.hpp"

#include "autograd/ops.hpp"

namespace vit {

Linear::Linear(int64_t in, int64_t out, bool bias, Shape weight_timm_shape) : in_(in), out_(out) {
  VIT_CHECK(in > 0 && out > 0, "Linear needs positive sizes, got in ", in, " out ", out);
  weight_ = register_parameter("weight", Tensor::zeros({out, in}), std::move(weight_timm_shape));
  if (bias) bias_ = register_parameter("bias", Tensor::zeros({out}));
}

Var Linear::forward(const Var& x) const { return linear(x, weight_, bias_); }

Var Linear::forward_gelu(const Var& x) const { return linear_gelu(x, weight_, bias_); }

Var Linear::forward_residual(const Var& x, const Var& residual) const {
  return linear_residual(x, weight_, bias_, residual);
}

}  // namespace vit
