// Multi-head self-attention interface with timm's parameters: `qkv` Linear(D, 3D) with bias
// (rows q, k, v, each head-major) and `proj` Linear(D, D). forward() is shared:
// mix (the qkv projection and the token-mixing core, per implementation) -> proj -> dropout.
// Implementations: SoftmaxAttention (exact, tiled) and FavorAttention (Performer, linear in N).
#pragma once
#include "nn/linear.hpp"

namespace vit {

class Attention : public Module {
 public:
  Attention(int64_t dim, int64_t heads, float proj_dropout);
  // x [B, N, D] -> [B, N, D]; random masks keyed by `site` and `site + 1`. With a residual
  // [B, N, D]: residual + that, the add fused into proj's GEMM when no dropout applies.
  Var forward(const Var& x, const ForwardContext& ctx, uint64_t site,
              const Var& residual = Var()) const;
  // The class token's row only: x [B, N, D] -> [B, D] (row 0 of forward()), with an optional
  // residual [B, D]. Keys and values still come from every token; the projection runs on one row.
  Var forward_cls(const Var& x, const ForwardContext& ctx, uint64_t site,
                  const Var& residual = Var()) const;
  int64_t heads() const { return heads_; }
  int64_t head_dim() const { return dim_ / heads_; }
  const Linear& qkv() const { return qkv_; }
  const Linear& proj() const { return proj_; }

 protected:
  // x [B, N, D] -> qkv() -> heads merged [B, N, D]
  virtual Var mix(const Var& x, const ForwardContext& ctx, uint64_t site) const = 0;
  // x [B, N, D] -> row 0 of mix() [B, D]; by default mix() then select_token.
  virtual Var mix_cls(const Var& x, const ForwardContext& ctx, uint64_t site) const;

 private:
  Var project(const Var& mixed, const ForwardContext& ctx, uint64_t site, const Var& residual) const;

  int64_t dim_, heads_;
  float proj_dropout_;
  Linear qkv_, proj_;
};

}  // namespace vit
