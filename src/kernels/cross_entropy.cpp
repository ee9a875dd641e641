// Fused log-softmax + cross-entropy kernels (see cross_entropy.hpp). Parallel over rows; the
// row sums are fixed-order lane_sums, so losses and gradients are thread-count invariant.
#include "kernels/cross_entropy.hpp"

#include <cmath>

#include "core/parallel.hpp"
#include "kernels/elementwise.hpp"

namespace vit::kernels {

namespace {
int64_t row_grain(int64_t K) { return 4096 / (K > 0 ? K : 1) + 1; }
}  // namespace

void cross_entropy_forward(float* losses, float* lse, const float* logits, const int32_t* labels,
                           int64_t B, int64_t K, float smoothing) {
  const float inv_k = 1.0f / static_cast<float>(K);
  parallel_range(0, B, row_grain(K), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float* z = logits + b * K;
      float m = z[0];
      for (int64_t k = 1; k < K; ++k) m = z[k] > m ? z[k] : m;
      const float sum_exp = lane_sum(K, [&](int64_t k) { return std::exp(z[k] - m); });
      const float l = m + std::log(sum_exp);
      // -log p_c = l - z_c, so mean_c(-log p_c) = l - mean_c z_c
      const float nll = l - z[labels[b]];
      const float smooth = l - lane_sum(K, [&](int64_t k) { return z[k]; }) * inv_k;
      losses[b] = (1.0f - smoothing) * nll + smoothing * smooth;
      if (lse) lse[b] = l;
    }
  });
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* labels, const float* dloss, int64_t B, int64_t K,
                            float smoothing) {
  // forward: loss_b = (1 - s) (lse_b - z_y) + s (lse_b - mean_c z_c)
  const float uniform = smoothing / static_cast<float>(K);
  parallel_range(0, B, row_grain(K), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float* z = logits + b * K;
      float* dz = dlogits + b * K;
      const float g = dloss[b], l = lse[b];
      for (int64_t k = 0; k < K; ++k) dz[k] += g * (std::exp(z[k] - l) - uniform);
      dz[labels[b]] -= g * (1.0f - smoothing);
    }
  });
}

}  // namespace vit::kernels
