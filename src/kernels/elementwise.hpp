// Elementwise kernels: pure functions over contiguous buffers. Broadcasts are "suffix" broadcasts:
// b has `inner` elements repeated over `outer` rows of a ([outer, inner]). Backward kernels
// accumulate (+=) into gradient buffers. Every output element is owned by one thread, and every
// sum has a fixed order, so results do not depend on the thread count. Activations (GELU) live in
// kernels/activation; row-wise ops (layernorm, softmax) have their own files.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/parallel.hpp"

namespace vit::kernels {

// out[o, i] = a[o, i] + b[i]
void add_forward(float* out, const float* a, const float* b, int64_t outer, int64_t inner);
// The backward of add: dst[i] += src[i] for i < n, or dst[i] = src[i] when `store` (a fresh
// gradient buffer, see Var::grad_for_write).
void accumulate(float* dst, const float* src, int64_t n, bool store);
// db[i] += sum_o dout[o, i] (the gradient of a broadcast [inner] operand, e.g. a bias). Rows are
// split into kReduceChunks fixed chunks summed in parallel and the partial sums are added in
// chunk order, so the bits do not depend on the thread count.
void column_sums(float* db, const float* dout, int64_t outer, int64_t inner);

// db[i] += sum_o x[o, i], rows in order on the calling thread (a thread's share of a sum that
// the caller splits into fixed chunks itself).
void add_column_sums(float* db, const float* x, int64_t outer, int64_t inner);

// column_sums over rows produced on the fly: row(o) returns a pointer to row o's `inner` values
// (it may compute them, e.g. a gradient written as it is summed: one pass over memory instead
// of two). Same chunks and order as column_sums, so the same bits for the same rows.
template <typename Row>
void column_sums_of(float* db, int64_t outer, int64_t inner, Row&& row) {
  if (outer < 4 * kReduceChunks) {  // few rows: one pass in row order
    for (int64_t o = 0; o < outer; ++o) {
      const float* r = row(o);
      for (int64_t i = 0; i < inner; ++i) db[i] += r[i];
    }
    return;
  }
  std::vector<float> partial(static_cast<size_t>(kReduceChunks * inner), 0.0f);
  parallel_for(0, kReduceChunks, [&](int64_t c) {
    float* p = partial.data() + c * inner;
    for (int64_t o = outer * c / kReduceChunks; o < outer * (c + 1) / kReduceChunks; ++o) {
      const float* r = row(o);
      for (int64_t i = 0; i < inner; ++i) p[i] += r[i];
    }
  });
  for (int64_t c = 0; c < kReduceChunks; ++c)
    for (int64_t i = 0; i < inner; ++i) db[i] += partial[c * inner + i];
}

// out[o, i] = a[o, i] * b[i]
void mul_forward(float* out, const float* a, const float* b, int64_t outer, int64_t inner);
// da[o, i] += dout[o, i] * b[i] (da may be null); db[i] += sum_o dout[o, i] * a[o, i] (db may
// be null). Column sums walk rows in order, one thread per block of columns.
void mul_backward(float* da, float* db, const float* dout, const float* a, const float* b,
                  int64_t outer, int64_t inner);

// out[i] = s * x[i]   (also the backward of scale: dx[i] += s * dout[i] via scale_accumulate)
void scale_forward(float* out, const float* x, float s, int64_t n);
// dx[i] += s * dout[i]
void scale_accumulate(float* dx, const float* dout, float s, int64_t n);
// dx[i] += g (the backward of sum and mean, g = dout or dout / n)
void fill_accumulate(float* dx, float g, int64_t n);

// sum of n floats in double, split in a fixed number of chunks (thread-count invariant)
double sum_forward(const float* x, int64_t n);

// Fixed-order float sum of term(i) for i in [0, n), for a row handled by one thread: 8 lane
// accumulators (so the compiler can vectorise without reassociating), lanes combined in order.
// Same n, same terms -> same bits, whatever the thread count. Used by layernorm/softmax/CE.
template <typename Term>
inline float lane_sum(int64_t n, Term term) {
  constexpr int64_t kLanes = 8;
  float acc[kLanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  for (int64_t l = 0; i < n; ++i, ++l) acc[l] += term(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Largest of x[0 .. n) (n >= 1), compared through order-preserving integer images of the floats:
// integer max vectorises under the default -ftrapping-math, float compares do not. Exact, so the
// lane split cannot change the result. (-0 ranks below +0; a NaN with the sign bit clear ranks
// above +inf, so it is returned and poisons the row as it should.)
inline float row_max(const float* x, int64_t n) {
  auto key = [](float f) {
    int32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b ^ ((b >> 31) & 0x7fffffff);
  };
  constexpr int64_t kLanes = 8;
  int32_t acc[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) acc[l] = key(x[0]);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      const int32_t k = key(x[i + l]);
      acc[l] = k > acc[l] ? k : acc[l];
    }
  for (; i < n; ++i) acc[0] = key(x[i]) > acc[0] ? key(x[i]) : acc[0];
  int32_t m = acc[0];
  for (int64_t l = 1; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m;
  const int32_t b = m ^ ((m >> 31) & 0x7fffffff);
  float out;
  std::memcpy(&out, &b, sizeof out);
  return out;
}

}  // namespace vit::kernels
