// Activation kernels: exact GELU, x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt 2)) (timm/torch
// nn.GELU default, not the tanh approximation). erf and exp are the vectorisable float
// approximations below (std::erf / std::exp are library calls that only vectorise under
// -ffast-math, which this project does not use). The scalar helpers are inline and are the one
// definition of GELU for both gelu() and linear_gelu (autograd/ops_linalg.cpp applies them after
// the GEMM). gelu_backward accumulates (+=); gelu_backward_saved overwrites.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/fast_math.hpp"

namespace vit::kernels {

// erf(x) as x P(x^2) / Q(x^2) on x clamped to [-4, 4] (a rational minimax fit; erf(4) rounds to 1
// in float). Absolute error < 5e-7 everywhere, relative error < 5e-7; NaN in gives NaN out. The
// clamp is done on the bit pattern with integer masks so loops over it vectorise (see fast_math.hpp).
inline float erf_fast(float x) {
  int32_t ix;
  std::memcpy(&ix, &x, sizeof ix);
  const int32_t ax = ix & 0x7fffffff;
  const int32_t big = -static_cast<int32_t>(ax > 0x40800000);  // |x| > 4 (bits of 4.0f)
  const int32_t nan = -static_cast<int32_t>(ax > 0x7f800000);
  const int32_t sign = ix & static_cast<int32_t>(0x80000000u);
  const int32_t ic = (ix & ~big) | ((sign | 0x40800000) & big);
  float xc;
  std::memcpy(&xc, &ic, sizeof xc);
  const float x2 = xc * xc;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  const float r = xc * p / q;
  int32_t ir;
  std::memcpy(&ir, &r, sizeof ir);
  ir = (ir & ~nan) | (ix & nan);
  float out;
  std::memcpy(&out, &ir, sizeof out);
  return out;
}

inline float gelu_value(float x) {
  return x * 0.5f * (1.0f + erf_fast(x * 0.70710678118654752440f));
}
// d gelu / dx = Phi(x) + x * phi(x) = 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)
inline float gelu_slope_from_cdf(float x, float cdf) {
  return cdf + x * (fast_exp(-0.5f * x * x) * 0.39894228040143267794f);
}
inline float gelu_derivative(float x) {
  return gelu_slope_from_cdf(x, 0.5f * (1.0f + erf_fast(x * 0.70710678118654752440f)));
}

// out[i] = gelu(x[i]) (out may alias x)
void gelu_forward(float* out, const float* x, int64_t n);
// out[i] = gelu(x[i]) and slope[i] = gelu'(x[i]), sharing one erf: for training, where backward
// then needs only dx = dout * slope (gelu_backward_saved) instead of another erf and exp.
void gelu_forward_with_slope(float* out, float* slope, const float* x, int64_t n);
// dx[i] = dout[i] * slope[i] (overwrites; dx may alias dout)
void gelu_backward_saved(float* dx, const float* dout, const float* slope, int64_t n);
// The same over [rows, cols] and, in the same pass, db[c] += sum_r dx[r, c] (the bias gradient
// of the linear layer before the GELU; kernels::column_sums' chunks and order, so its bits).
void gelu_backward_saved_bias(float* dx, float* db, const float* dout, const float* slope,
                              int64_t rows, int64_t cols);
// dx[i] += dout[i] * gelu'(x[i]), x being the forward input
void gelu_backward(float* dx, const float* dout, const float* x, int64_t n);

}  // namespace vit::kernels
