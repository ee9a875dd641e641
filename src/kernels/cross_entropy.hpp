// Cross-entropy of logits [B, K] against integer labels, fused with log-softmax, with timm's
// label smoothing: loss_b = (1 - s) * (-log p_y) + s * mean_c(-log p_c), -log p_c = lse - z_c.
// The kernels give per-row losses (the op averages them in a fixed order) and the gradient
// dz_c = g * (p_c - (1 - s) [c == y] - s / K). Labels must be in [0, K): the op checks them.
// Not for soft targets (mixup); no ignore_index.
#pragma once
#include <cstdint>

namespace vit::kernels {

// losses [B] per-row loss; lse [B] row log-sum-exp saved for backward (may be null)
void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* labels,
                           int64_t B, int64_t K, float smoothing);

// dlogits [B, K] += g_b * (softmax(z_b) - (1 - s) onehot(y_b) - s / K), with g_b = dloss[b]
// (for a mean over the batch the op passes dloss[b] = dout / B). lse from the forward.
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* labels, const float* dloss, int64_t B, int64_t K,
                            float smoothing);

}  // namespace vit::kernels
