// Activation kernels (see activation.hpp): flat loops split over threads; each element is
// independent, so any split gives the same bits.
#include "kernels/activation.hpp"

#include "core/parallel.hpp"

namespace vit::kernels {

namespace {
constexpr int64_t kGrain = 4096;  // erf is ~20 flops: smaller blocks than plain adds
}

void gelu_forward(float* out, const float* x, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = gelu_value(x[i]);
  });
}

void gelu_backward(float* dx, const float* dout, const float* x, int64_t n) {
  // forward: out = gelu(x)
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] += dout[i] * gelu_derivative(x[i]);
  });
}

}  // namespace vit::kernels
