// Softmax kernels (see softmax.hpp). Parallel over rows; row sums are fixed-order lane_sums.
#include "kernels/softmax.hpp"

#include <cmath>

#include "core/parallel.hpp"
#include "kernels/elementwise.hpp"

namespace vit::kernels {

namespace {
int64_t row_grain(int64_t K) { return 4096 / (K > 0 ? K : 1) + 1; }
}  // namespace

void softmax_forward(float* y, const float* x, int64_t R, int64_t K) {
  parallel_range(0, R, row_grain(K), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * K;
      float* yr = y + r * K;
      float m = xr[0];
      for (int64_t k = 1; k < K; ++k) m = xr[k] > m ? xr[k] : m;
      for (int64_t k = 0; k < K; ++k) yr[k] = std::exp(xr[k] - m);
      const float inv = 1.0f / lane_sum(K, [&](int64_t k) { return yr[k]; });
      for (int64_t k = 0; k < K; ++k) yr[k] *= inv;
    }
  });
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t R, int64_t K) {
  // forward: y = softmax(x);  dx_k = y_k * (dy_k - sum_j dy_j y_j)
  parallel_range(0, R, row_grain(K), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* g = dy + r * K;
      const float* yr = y + r * K;
      float* dxr = dx + r * K;
      const float dot = lane_sum(K, [&](int64_t k) { return g[k] * yr[k]; });
      for (int64_t k = 0; k < K; ++k) dxr[k] += yr[k] * (g[k] - dot);
    }
  });
}

}  // namespace vit::kernels
