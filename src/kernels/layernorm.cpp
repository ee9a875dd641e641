// LayerNorm kernels (see layernorm.hpp). Rows are independent and owned by one thread; every
// row sum is a fixed-order lane_sum. Two-pass variance (mean first) avoids the cancellation of
// E[x^2] - E[x]^2 on rows with a large mean.
#include "kernels/layernorm.hpp"

#include <cmath>

#include "core/parallel.hpp"
#include "kernels/elementwise.hpp"

namespace vit::kernels {

namespace {
int64_t row_grain(int64_t D) { return 8192 / (D > 0 ? D : 1) + 1; }
// One row of dx (see layernorm_backward); kHasWeight instead of a per-element branch keeps the
// row loops branch-free so they vectorise.
template <bool kHasWeight>
void layernorm_dx_row(float* dxr, const float* g, const float* xr, float m, float s,
                      const float* weight, int64_t D, float inv_d) {
  auto dxhat = [&](int64_t i) { return kHasWeight ? g[i] * weight[i] : g[i]; };
  const float a = lane_sum(D, [&](int64_t i) { return dxhat(i); }) * inv_d;
  const float c = lane_sum(D, [&](int64_t i) { return dxhat(i) * ((xr[i] - m) * s); }) * inv_d;
  for (int64_t i = 0; i < D; ++i) dxr[i] += s * (dxhat(i) - a - ((xr[i] - m) * s) * c);
}
}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight,
                       const float* bias, int64_t R, int64_t D, float eps) {
  const float inv_d = 1.0f / static_cast<float>(D);
  parallel_range(0, R, row_grain(D), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * D;
      float* orow = out + r * D;
      const float m = lane_sum(D, [&](int64_t i) { return xr[i]; }) * inv_d;
      const float var = lane_sum(D, [&](int64_t i) {
        const float c = xr[i] - m;
        return c * c;
      }) * inv_d;
      const float s = 1.0f / std::sqrt(var + eps);
      if (mean) mean[r] = m;
      if (rstd) rstd[r] = s;
      for (int64_t i = 0; i < D; ++i) {
        const float xhat = (xr[i] - m) * s;
        orow[i] = xhat * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
      }
    }
  });
}

void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                        const float* x, const float* mean, const float* rstd, const float* weight,
                        int64_t R, int64_t D) {
  // forward: out = xhat * w + b,  xhat = (x - mean) * rstd
  // dxhat = dout * w;  dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
  const float inv_d = 1.0f / static_cast<float>(D);
  if (dx) {
    parallel_range(0, R, row_grain(D), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        if (weight)
          layernorm_dx_row<true>(dx + r * D, dout + r * D, x + r * D, mean[r], rstd[r], weight, D, inv_d);
        else
          layernorm_dx_row<false>(dx + r * D, dout + r * D, x + r * D, mean[r], rstd[r], weight, D, inv_d);
      }
    });
  }
  if (dweight || dbias) {
    // Column sums over rows: a thread owns a block of columns and walks rows in order.
    parallel_range(0, D, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t r = 0; r < R; ++r) {
        const float* xr = x + r * D;
        const float* g = dout + r * D;
        const float m = mean[r], s = rstd[r];
        if (dweight)
          for (int64_t i = lo; i < hi; ++i) dweight[i] += g[i] * ((xr[i] - m) * s);
        if (dbias)
          for (int64_t i = lo; i < hi; ++i) dbias[i] += g[i];
      }
    });
  }
}

}  // namespace vit::kernels
