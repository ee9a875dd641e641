// LayerNorm over the last axis with timm's names (`weight` = gamma, `bias` = beta) and eps
// 1e-6 by default (timm's ViT, not torch's 1e-5). Starts at weight 1, bias 0 (timm init).
#pragma once
#include "nn/module.hpp"

namespace vit {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, float eps = 1e-6f);
  Var forward(const Var& x) const;  // [..., dim] -> [..., dim]
  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }

 private:
  float eps_;
  Var weight_, bias_;
};

}  // namespace vit
