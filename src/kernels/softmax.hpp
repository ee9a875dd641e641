// Softmax over the last axis: x viewed as [R, K] rows. Max-subtracted for stability; each row is
// handled by one thread with fixed-order sums. Backward uses the forward output y only:
// dx = y * (dy - sum(dy * y)). Not the attention softmax (kernels/attention fuses its own).
#pragma once
#include <cstdint>

namespace vit::kernels {

// y [R, K] = exp(x - max) / sum exp(x - max), per row
void softmax_forward(float* y, const float* x, int64_t R, int64_t K);
// dx [R, K] += y * (dy - sum_k dy * y)
void softmax_backward(float* dx, const float* dy, const float* y, int64_t R, int64_t K);

}  // namespace vit::kernels
