// Activation kernels (see activation.hpp): flat loops split over threads; each element is
// independent, so any split gives the same bits. The loops vectorise (erf_fast / fast_exp are
// branch-free arithmetic) and are built for baseline x86-64 and AVX2 + FMA (kernels/simd.hpp).
#include "kernels/activation.hpp"

#include "core/parallel.hpp"
#include "kernels/simd.hpp"

namespace vit::kernels {

namespace {
constexpr int64_t kGrain = 16384;  // vectorised GELU is a few ns per element

VIT_ALWAYS_INLINE void forward_span_body(float* __restrict out, const float* __restrict x,
                                         int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) out[i] = gelu_value(x[i]);
}
VIT_ALWAYS_INLINE void backward_span_body(float* __restrict dx, const float* __restrict dout,
                                          const float* __restrict x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) dx[i] += dout[i] * gelu_derivative(x[i]);
}
VIT_ALWAYS_INLINE void forward_slope_span_body(float* __restrict out, float* __restrict slope,
                                               const float* __restrict x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const float cdf = 0.5f * (1.0f + erf_fast(x[i] * 0.70710678118654752440f));
    out[i] = x[i] * cdf;
    slope[i] = gelu_slope_from_cdf(x[i], cdf);
  }
}
VIT_ALWAYS_INLINE void backward_saved_span_body(float* dx, const float* dout, const float* slope,
                                                int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) dx[i] = dout[i] * slope[i];
}
VIT_SIMD_VARIANTS(void, forward_span, (float* out, const float* x, int64_t lo, int64_t hi),
                  (out, x, lo, hi))
VIT_SIMD_VARIANTS(void, forward_slope_span,
                  (float* out, float* slope, const float* x, int64_t lo, int64_t hi),
                  (out, slope, x, lo, hi))
VIT_SIMD_VARIANTS(void, backward_saved_span,
                  (float* dx, const float* dout, const float* slope, int64_t lo, int64_t hi),
                  (dx, dout, slope, lo, hi))
VIT_SIMD_VARIANTS(void, backward_span,
                  (float* dx, const float* dout, const float* x, int64_t lo, int64_t hi),
                  (dx, dout, x, lo, hi))
}  // namespace

void gelu_forward(float* out, const float* x, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    forward_span(out, x, lo, hi);
  });
}

void gelu_forward_with_slope(float* out, float* slope, const float* x, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    forward_slope_span(out, slope, x, lo, hi);
  });
}

void gelu_backward_saved(float* dx, const float* dout, const float* slope, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    backward_saved_span(dx, dout, slope, lo, hi);
  });
}

void gelu_backward(float* dx, const float* dout, const float* x, int64_t n) {
  // forward: out = gelu(x)
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    backward_span(dx, dout, x, lo, hi);
  });
}

}  // namespace vit::kernels
