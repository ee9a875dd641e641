// Dropout kernels (see dropout.hpp): elementwise products, parallel over flat ranges or rows.
#include "kernels/dropout.hpp"

#include "core/parallel.hpp"

namespace vit::kernels {

namespace {
constexpr int64_t kGrain = 16384;
int64_t row_grain(int64_t inner) { return kGrain / (inner > 0 ? inner : 1) + 1; }
}  // namespace

void mask_forward(float* out, const float* x, const float* mask, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = x[i] * mask[i];
  });
}

void mask_backward(float* dx, const float* dout, const float* mask, int64_t n) {
  parallel_range(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] += dout[i] * mask[i];
  });
}

void row_scale_forward(float* out, const float* x, const float* row_scale, int64_t B, int64_t inner) {
  parallel_range(0, B, row_grain(inner), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float s = row_scale[b];
      for (int64_t i = b * inner; i < (b + 1) * inner; ++i) out[i] = x[i] * s;
    }
  });
}

void row_scale_backward(float* dx, const float* dout, const float* row_scale, int64_t B, int64_t inner) {
  parallel_range(0, B, row_grain(inner), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const float s = row_scale[b];
      for (int64_t i = b * inner; i < (b + 1) * inner; ++i) dx[i] += dout[i] * s;
    }
  });
}

}  // namespace vit::kernels
