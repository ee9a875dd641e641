// Elementwise kernels: pure functions over contiguous buffers. Broadcasts are "suffix" broadcasts:
// b has `inner` elements repeated over `outer` rows of a ([outer, inner]). Backward kernels
// accumulate (+=) into gradient buffers. Every output element is owned by one thread.
#pragma once
#include <cstdint>

namespace vit::kernels {

// out[o, i] = a[o, i] + b[i]
void add_forward(float* out, const float* a, const float* b, int64_t outer, int64_t inner);
// da[o, i] += dout[o, i] (da may be null); db[i] += sum_o dout[o, i] (db may be null)
void add_backward(float* da, float* db, const float* dout, int64_t outer, int64_t inner);

// sum of n floats in double, split in a fixed number of chunks (thread-count invariant)
double sum_forward(const float* x, int64_t n);

}  // namespace vit::kernels
