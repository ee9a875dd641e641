// Dropout kernels. The keep mask is drawn by the op (serially, from an Rng, so it never depends
// on the thread count) and stored as a float scale per element or per row: 0 for dropped,
// 1/(1-p) for kept (inverted dropout). The kernels only apply it; backward applies it again.
#pragma once
#include <cstdint>

namespace vit::kernels {

// out[i] = x[i] * mask[i]
void mask_forward(float* out, const float* x, const float* mask, int64_t n);
// dx[i] += dout[i] * mask[i]
void mask_backward(float* dx, const float* dout, const float* mask, int64_t n);

// Drop path: x viewed as [B, inner]; out[b, i] = x[b, i] * row_scale[b]
void row_scale_forward(float* out, const float* x, const float* row_scale, int64_t B, int64_t inner);
// dx[b, i] += dout[b, i] * row_scale[b]
void row_scale_backward(float* dx, const float* dout, const float* row_scale, int64_t B, int64_t inner);

}  // namespace vit::kernels
