// Activation kernels: exact GELU, x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt 2)) (timm/torch
// nn.GELU default, not the tanh approximation). The scalar helpers are inline so the GEMM
// epilogue can share the exact same formula. Backward kernels accumulate (+=).
#pragma once
#include <cmath>
#include <cstdint>

namespace vit::kernels {

inline float gelu_value(float x) {
  return x * 0.5f * (1.0f + std::erf(x * 0.70710678118654752440f));
}
// d gelu / dx = Phi(x) + x * phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
inline float gelu_derivative(float x) {
  const float cdf = 0.5f * (1.0f + std::erf(x * 0.70710678118654752440f));
  const float pdf = std::exp(-0.5f * x * x) * 0.39894228040143267794f;
  return cdf + x * pdf;
}

// out[i] = gelu(x[i])
void gelu_forward(float* out, const float* x, int64_t n);
// dx[i] += dout[i] * gelu'(x[i]), x being the forward input
void gelu_backward(float* dx, const float* dout, const float* x, int64_t n);

}  // namespace vit::kernels
