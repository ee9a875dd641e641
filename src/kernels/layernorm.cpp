// LayerNorm kernels (see layernorm.hpp). Rows are independent and owned by one thread; every
// row sum is a fixed-order lane_sum; the row loops are built for baseline x86-64 and AVX2 + FMA
// (kernels/simd.hpp). Two-pass variance (mean first) avoids the cancellation of
// E[x^2] - E[x]^2 on rows with a large mean.
#include "kernels/layernorm.hpp"

#include <cmath>
#include <vector>

#include "core/parallel.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/simd.hpp"

namespace vit::kernels {

namespace {
int64_t row_grain(int64_t D) { return 8192 / (D > 0 ? D : 1) + 1; }

VIT_ALWAYS_INLINE void forward_rows_body(float* out, float* mean, float* rstd, const float* x,
                                         const float* weight, const float* bias, int64_t lo,
                                         int64_t hi, int64_t D, float eps) {
  const float inv_d = 1.0f / static_cast<float>(D);
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
}

// One row of dx (see layernorm_backward); kHasWeight instead of a per-element branch keeps the
// row loops branch-free so they vectorise.
template <bool kHasWeight>
VIT_ALWAYS_INLINE void dx_row(float* dxr, const float* g, const float* xr, float m, float s,
                              const float* weight, int64_t D, float inv_d) {
  auto dxhat = [&](int64_t i) { return kHasWeight ? g[i] * weight[i] : g[i]; };
  const float a = lane_sum(D, [&](int64_t i) { return dxhat(i); }) * inv_d;
  const float c = lane_sum(D, [&](int64_t i) { return dxhat(i) * ((xr[i] - m) * s); }) * inv_d;
  for (int64_t i = 0; i < D; ++i) dxr[i] += s * (dxhat(i) - a - ((xr[i] - m) * s) * c);
}

// Rows [lo, hi): dx rows, and the rows' contributions to dweight and dbias added into pw and pb
// (each may be null) in row order.
VIT_ALWAYS_INLINE void backward_rows_body(float* dx, float* pw, float* pb, const float* dout,
                                          const float* x, const float* mean, const float* rstd,
                                          const float* weight, int64_t lo, int64_t hi, int64_t D) {
  const float inv_d = 1.0f / static_cast<float>(D);
  for (int64_t r = lo; r < hi; ++r) {
    const float* xr = x + r * D;
    const float* g = dout + r * D;
    const float m = mean[r], s = rstd[r];
    if (dx && weight) dx_row<true>(dx + r * D, g, xr, m, s, weight, D, inv_d);
    else if (dx) dx_row<false>(dx + r * D, g, xr, m, s, weight, D, inv_d);
    if (pw)
      for (int64_t i = 0; i < D; ++i) pw[i] += g[i] * ((xr[i] - m) * s);
    if (pb)
      for (int64_t i = 0; i < D; ++i) pb[i] += g[i];
  }
}

VIT_SIMD_VARIANTS(void, forward_rows,
                  (float* out, float* mean, float* rstd, const float* x, const float* weight,
                   const float* bias, int64_t lo, int64_t hi, int64_t D, float eps),
                  (out, mean, rstd, x, weight, bias, lo, hi, D, eps))
VIT_SIMD_VARIANTS(void, backward_rows,
                  (float* dx, float* pw, float* pb, const float* dout, const float* x,
                   const float* mean, const float* rstd, const float* weight, int64_t lo,
                   int64_t hi, int64_t D),
                  (dx, pw, pb, dout, x, mean, rstd, weight, lo, hi, D))
}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight,
                       const float* bias, int64_t R, int64_t D, float eps) {
  parallel_range(0, R, row_grain(D), [&](int64_t lo, int64_t hi) {
    forward_rows(out, mean, rstd, x, weight, bias, lo, hi, D, eps);
  });
}

void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                        const float* x, const float* mean, const float* rstd, const float* weight,
                        int64_t R, int64_t D) {
  // forward: out = xhat * w + b,  xhat = (x - mean) * rstd
  // dxhat = dout * w;  dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
  // One pass over kReduceChunks fixed row chunks: each chunk's dx rows and its partial dweight /
  // dbias column sums; the partials are then added in chunk order (thread-count invariant).
  std::vector<float> partial(static_cast<size_t>(kReduceChunks * 2 * D), 0.0f);
  parallel_for(0, kReduceChunks, [&](int64_t c) {
    float* pw = dweight ? partial.data() + c * 2 * D : nullptr;
    float* pb = dbias ? partial.data() + c * 2 * D + D : nullptr;
    backward_rows(dx, pw, pb, dout, x, mean, rstd, weight, R * c / kReduceChunks,
                  R * (c + 1) / kReduceChunks, D);
  });
  for (int64_t c = 0; c < kReduceChunks; ++c)
    for (int64_t i = 0; i < D; ++i) {
      if (dweight) dweight[i] += partial[c * 2 * D + i];
      if (dbias) dbias[i] += partial[c * 2 * D + D + i];
    }
}

}  // namespace vit::kernels
