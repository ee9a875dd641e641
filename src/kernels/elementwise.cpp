#include "kernels/elementwise.hpp"

#include "core/parallel.hpp"

namespace vit::kernels {

void add_forward(float* out, const float* a, const float* b, int64_t outer, int64_t inner) {
  parallel_range(0, outer, 4096 / (inner > 0 ? inner : 1) + 1, [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const float* ar = a + o * inner;
      float* orow = out + o * inner;
      for (int64_t i = 0; i < inner; ++i) orow[i] = ar[i] + b[i];
    }
  });
}

void add_backward(float* da, float* db, const float* dout, int64_t outer, int64_t inner) {
  if (da) {
    const int64_t n = outer * inner;
    parallel_range(0, n, 16384, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) da[i] += dout[i];
    });
  }
  if (db) {
    // Column sums: each thread owns a block of columns and walks rows in order.
    parallel_range(0, inner, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t o = 0; o < outer; ++o) {
        const float* row = dout + o * inner;
        for (int64_t i = lo; i < hi; ++i) db[i] += row[i];
      }
    });
  }
}

double sum_forward(const float* x, int64_t n) {
  double partial[kReduceChunks] = {};
  parallel_for(0, kReduceChunks, [&](int64_t c) {
    const int64_t lo = n * c / kReduceChunks, hi = n * (c + 1) / kReduceChunks;
    double s = 0.0;
    for (int64_t i = lo; i < hi; ++i) s += x[i];
    partial[c] = s;
  });
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

}  // namespace vit::kernels
