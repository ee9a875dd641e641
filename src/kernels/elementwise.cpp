// Elementwise kernels (see elementwise.hpp). Parallel over rows or flat ranges; column sums
// either walk rows in order or add fixed row-chunk partials in chunk order (thread-count
// invariant either way).
#include "kernels/elementwise.hpp"

#include <algorithm>
#include <vector>

#include "core/parallel.hpp"

namespace vit::kernels {

namespace {
constexpr int64_t kFlatGrain = 16384;  // elements per thread block for flat loops
int64_t row_grain(int64_t inner) { return 4096 / (inner > 0 ? inner : 1) + 1; }
}  // namespace

void add_forward(float* out, const float* a, const float* b, int64_t outer, int64_t inner) {
  parallel_range(0, outer, row_grain(inner), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const float* ar = a + o * inner;
      float* orow = out + o * inner;
      for (int64_t i = 0; i < inner; ++i) orow[i] = ar[i] + b[i];
    }
  });
}

void accumulate(float* dst, const float* src, int64_t n, bool store) {
  parallel_range(0, n, kFlatGrain, [&](int64_t lo, int64_t hi) {
    if (store) std::copy(src + lo, src + hi, dst + lo);
    else
      for (int64_t i = lo; i < hi; ++i) dst[i] += src[i];
  });
}

void add_column_sums(float* db, const float* x, int64_t outer, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) db[i] += x[o * inner + i];
}

void column_sums(float* db, const float* dout, int64_t outer, int64_t inner) {
  column_sums_of(db, outer, inner, [&](int64_t o) { return dout + o * inner; });
}

void mul_forward(float* out, const float* a, const float* b, int64_t outer, int64_t inner) {
  parallel_range(0, outer, row_grain(inner), [&](int64_t lo, int64_t hi) {
    for (int64_t o = lo; o < hi; ++o) {
      const float* ar = a + o * inner;
      float* orow = out + o * inner;
      for (int64_t i = 0; i < inner; ++i) orow[i] = ar[i] * b[i];
    }
  });
}

void mul_backward(float* da, float* db, const float* dout, const float* a, const float* b,
                  int64_t outer, int64_t inner) {
  // forward: out[o, i] = a[o, i] * b[i]
  if (da) {
    parallel_range(0, outer, row_grain(inner), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        const float* g = dout + o * inner;
        float* dar = da + o * inner;
        for (int64_t i = 0; i < inner; ++i) dar[i] += g[i] * b[i];
      }
    });
  }
  if (db) {
    parallel_range(0, inner, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t o = 0; o < outer; ++o) {
        const float* g = dout + o * inner;
        const float* ar = a + o * inner;
        for (int64_t i = lo; i < hi; ++i) db[i] += g[i] * ar[i];
      }
    });
  }
}

void scale_forward(float* out, const float* x, float s, int64_t n) {
  parallel_range(0, n, kFlatGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = s * x[i];
  });
}

void scale_accumulate(float* dx, const float* dout, float s, int64_t n) {
  parallel_range(0, n, kFlatGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] += s * dout[i];
  });
}

void fill_accumulate(float* dx, float g, int64_t n) {
  parallel_range(0, n, kFlatGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] += g;
  });
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
