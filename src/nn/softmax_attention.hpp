// Exact softmax attention, softmax(q k^T / sqrt(d)) v per head, through the tiled attention()
// op: no N x N matrix is kept for backward, so N = 4096 tokens fits in memory.
#pragma once
#include "nn/attention.hpp"

namespace vit {

class SoftmaxAttention : public Attention {
 public:
  SoftmaxAttention(int64_t dim, int64_t heads, float attn_dropout, float proj_dropout);

 protected:
  Var mix(const Var& x, const ForwardContext& ctx, uint64_t site) const override;
  Var mix_cls(const Var& x, const ForwardContext& ctx, uint64_t site) const override;

 private:
  float attn_dropout_;
};

}  // namespace vit
