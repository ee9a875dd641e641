// Transformer MLP as timm's `Mlp`: fc1 -> GELU(erf) -> dropout -> fc2 -> dropout.
// fc1 and the GELU run as one fused op (linear_gelu). Not here: GLU variants.
#pragma once
#include "nn/linear.hpp"

namespace vit {

class Mlp : public Module {
 public:
  Mlp(int64_t dim, int64_t hidden, float dropout);
  // x [B, N, dim] -> [B, N, dim]; dropout masks from sites `site` and `site + 1`. With a
  // residual [B, N, dim]: residual + that, the add fused into fc2's GEMM when no dropout applies.
  Var forward(const Var& x, const ForwardContext& ctx, uint64_t site,
              const Var& residual = Var()) const;
  const Linear& fc1() const { return fc1_; }
  const Linear& fc2() const { return fc2_; }

 private:
  Linear fc1_, fc2_;
  float dropout_;
};

}  // namespace vit
