// LayerNorm over the last axis: x viewed as [R, D] rows (R = product of the leading axes).
// Forward stores per-row mean and rstd = 1/sqrt(var + eps) (biased variance, like torch) for the
// backward. Backward is one pass per row for dx; dweight/dbias are column sums computed parallel
// over columns with rows walked in order (bit-identical for any thread count). Not fused with
// the residual add or the following linear.
#pragma once
#include <cstdint>

namespace vit::kernels {

// out [R, D] = (x - mean) * rstd * weight + bias; weight/bias [D] may be null (1 and 0).
// mean, rstd [R] may be null (inference).
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* weight,
                       const float* bias, int64_t R, int64_t D, float eps);

// Accumulates (+=) dx [R, D], dweight [D], dbias [D]; any of them may be null. weight may be
// null (treated as 1). mean/rstd are the forward's saved rows.
void layernorm_backward(float* dx, float* dweight, float* dbias, const float* dout,
                        const float* x, const float* mean, const float* rstd, const float* weight,
                        int64_t R, int64_t D);

}  // namespace vit::kernels
