// Activation kernels (see activation.hpp): flat loops split over threads; each element is
// independent, so any split gives the same bits. The loops vectorise (erf_fast / fast_exp are
// branch-free arithmetic) and are cloned for AVX2 (8 lanes, chosen at load time). The clone
// enables AVX2 only, not FMA, so no multiply-add is contracted: both clones give the same bits.
#include "kernels/activation.hpp"

#include "core/parallel.hpp"

namespace vit::kernels {

namespace {
constexpr int64_t kGrain = 16384;  // vectorised GELU is a few ns per element

#define VIT_CLONES __attribute__((target_clones("avx2", "default")))
VIT_CLONES void forward_span(float* out, const float* x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) out[i] = gelu_value(x[i]);
}
VIT_CLONES void backward_span(float* __restrict dx, const float* __restrict dout,
                              const float* __restrict x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) dx[i] += dout[i] * gelu_derivative(x[i]);
}
VIT_CLONES void backward_to_span(float* dx, const float* dout, const float* x, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) dx[i] = dout[i] * gelu_derivative(x[i]);
}
#undef VIT_CLONES
}  // namespace

void gelu_forward(float* out, const float* x, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    forward_span(out, x, lo, hi);
  });
}

void gelu_backward(float* dx, const float* dout, const float* x, int64_t n) {
  // forward: out = gelu(x)
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    backward_span(dx, dout, x, lo, hi);
  });
}

void gelu_backward_to(float* dx, const float* dout, const float* x, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    backward_to_span(dx, dout, x, lo, hi);
  });
}

}  // namespace vit::kernels
