// FAVOR+ (Performer) attention: the same qkv/proj parameters as SoftmaxAttention, token mixing by
// favor_attention() (cost linear in N), plus the non-trained projection buffer
// `projection_matrix` [F, d] (rows = random features, shared by the heads of a layer).
// redraw() replaces the buffer in place; WHEN to redraw is the model's decision (ViT::maybe_redraw).
// Attention dropout does not apply (there is no probability matrix to drop from).
#pragma once
#include "autograd/ops.hpp"
#include "nn/attention.hpp"

namespace vit {

class FavorAttention : public Attention {
 public:
  // features <= 0: the default floor(d ln d) for head width d.
  FavorAttention(int64_t dim, int64_t heads, int64_t features, FavorKernel kernel, float eps,
                 float proj_dropout);

  // Draw a fresh orthogonal random projection from `rng` into the buffer (same storage).
  void redraw(Rng& rng);
  const Tensor& projection() const { return projection_; }
  int64_t features() const { return projection_.size(0); }
  FavorKernel kernel() const { return kernel_; }

 protected:
  Var mix(const Var& x, const ForwardContext& ctx, uint64_t site) const override;
  Var mix_cls(const Var& x, const ForwardContext& ctx, uint64_t site) const override;

 private:
  FavorKernel kernel_;
  float eps_;
  Tensor projection_;  // [F, d]
};

}  // namespace vit
