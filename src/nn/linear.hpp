// Linear layer y = x w^T + b with timm's parameter names (`weight` [out, in], `bias` [out]).
// Initialisation is done by the owning model (nn/vit.cpp), by name, as timm does; here the
// weight starts at zero. Not here: any other layout than row-major [out, in].
#pragma once
#include "nn/module.hpp"

namespace vit {

class Linear : public Module {
 public:
  // `weight_timm_shape`: the weight's checkpoint shape when it differs (patch conv [D, C, P, P]).
  Linear(int64_t in, int64_t out, bool bias = true, Shape weight_timm_shape = {});

  Var forward(const Var& x) const;       // [..., in] -> [..., out]
  Var forward_gelu(const Var& x) const;  // gelu(forward(x)), fused in the GEMM epilogue
  // residual + forward(x), the residual added in the GEMM epilogue
  Var forward_residual(const Var& x, const Var& residual) const;

  const Var& weight() const { return weight_; }
  const Var& bias() const { return bias_; }  // undefined when built without bias
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

 private:
  int64_t in_, out_;
  Var weight_, bias_;
};

}  // namespace vit
