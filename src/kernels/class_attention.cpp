// Class-token attention (see class_attention.hpp): per sample, all heads; the dot products over
// the head width as 8-lane sums, the products with v and k as axpys over the head width, so the
// compiler vectorises both without reassociating a float sum.
#include "kernels/class_attention.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/fast_math.hpp"
#include "kernels/qkv_layout.hpp"
#include "kernels/simd.hpp"

namespace vit::kernels {

namespace {

// Sample b's heads: p [H, N], out [D].
VIT_ALWAYS_INLINE void sample_forward_body(float* __restrict out, float* __restrict p,
                                           const float* qkv, int64_t b, int64_t N, int64_t H,
                                           int64_t d) {
  const int64_t D = H * d, ld = 3 * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t h = 0; h < H; ++h) {
    const QkvHead x = qkv_head(qkv, b, h, N, D, d);  // not bound: lambdas capture q, k, v
    const float *q = x.q, *k = x.k, *v = x.v;
    float* __restrict ph = p + h * N;
    for (int64_t j = 0; j < N; ++j)
      ph[j] = scale * lane_sum(d, [&](int64_t t) { return q[t] * k[j * ld + t]; });
    const float m = row_max(ph, N);
    for (int64_t j = 0; j < N; ++j) ph[j] = fast_exp(ph[j] - m);
    const float inv = 1.0f / lane_sum(N, [&](int64_t j) { return ph[j]; });
    for (int64_t j = 0; j < N; ++j) ph[j] *= inv;
    float* __restrict o = out + h * d;
    for (int64_t c = 0; c < d; ++c) o[c] = 0.0f;
    for (int64_t j = 0; j < N; ++j)
      for (int64_t c = 0; c < d; ++c) o[c] += ph[j] * v[j * ld + c];
  }
}

// Sample b's rows of dqkv; ds [N + d] scratch (dS, then dq_0).
VIT_ALWAYS_INLINE void sample_backward_body(float* __restrict g, bool fresh, const float* dout,
                                            const float* p, const float* qkv, int64_t b,
                                            int64_t N, int64_t H, int64_t d, float* __restrict ds) {
  const int64_t D = H * d, ld = 3 * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t h = 0; h < H; ++h) {
    const QkvHead x = qkv_head(qkv, b, h, N, D, d);  // not bound: lambdas capture q, k, v
    const float *q = x.q, *k = x.k, *v = x.v;
    const float* __restrict ph = p + h * N;
    const float* __restrict dor = dout + h * d;
    // dS_j = P_j (dO . v_j - sum_i P_i dO . v_i) scale
    for (int64_t j = 0; j < N; ++j)
      ds[j] = lane_sum(d, [&](int64_t c) { return dor[c] * v[j * ld + c]; });
    const float dsum = lane_sum(N, [&](int64_t j) { return ph[j] * ds[j]; });
    for (int64_t j = 0; j < N; ++j) ds[j] = ph[j] * (ds[j] - dsum) * scale;
    float* __restrict gq = g + h * d;
    float* __restrict gk = gq + D;
    float* __restrict gv = gq + 2 * D;
    float* __restrict dq = ds + N;
    for (int64_t c = 0; c < d; ++c) dq[c] = 0.0f;
    for (int64_t j = 0; j < N; ++j) {
      for (int64_t c = 0; c < d; ++c) dq[c] += ds[j] * k[j * ld + c];  // dq_0 = dS K
      float* __restrict gkj = gk + j * ld;
      float* __restrict gvj = gv + j * ld;
      if (fresh) {
        for (int64_t c = 0; c < d; ++c) gkj[c] = ds[j] * q[c];      // dk_j = dS_j q_0
        for (int64_t c = 0; c < d; ++c) gvj[c] = ph[j] * dor[c];    // dv_j = P_j dO
        if (j > 0)
          for (int64_t c = 0; c < d; ++c) gq[j * ld + c] = 0.0f;
      } else {
        for (int64_t c = 0; c < d; ++c) gkj[c] += ds[j] * q[c];
        for (int64_t c = 0; c < d; ++c) gvj[c] += ph[j] * dor[c];
      }
    }
    for (int64_t c = 0; c < d; ++c) gq[c] = fresh ? dq[c] : gq[c] + dq[c];
  }
}

VIT_SIMD_VARIANTS(void, sample_forward,
                  (float* out, float* p, const float* qkv, int64_t b, int64_t N, int64_t H,
                   int64_t d),
                  (out, p, qkv, b, N, H, d))
VIT_SIMD_VARIANTS(void, sample_backward,
                  (float* g, bool fresh, const float* dout, const float* p, const float* qkv,
                   int64_t b, int64_t N, int64_t H, int64_t d, float* ds),
                  (g, fresh, dout, p, qkv, b, N, H, d, ds))

// Samples per thread block: ~2^16 multiply-adds at least, so small calls stay on one thread.
int64_t grain(const AttentionDims& x) {
  const int64_t per_sample = 2 * x.heads * x.tokens * x.head_dim;
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, per_sample));
}

}  // namespace

void class_attention_forward(float* out, float* probs, const float* qkv, const AttentionDims& x) {
  const int64_t N = x.tokens, H = x.heads, d = x.head_dim, D = H * d;
  parallel_range(0, x.batch, grain(x), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) sample_forward(out + b * D, probs + b * H * N, qkv, b, N, H, d);
  });
}

void class_attention_backward(float* dqkv, bool fresh, const float* dout, const float* probs,
                              const float* qkv, const AttentionDims& x) {
  const int64_t N = x.tokens, H = x.heads, d = x.head_dim, D = H * d;
  parallel_range(0, x.batch, grain(x), [&](int64_t lo, int64_t hi) {
    std::vector<float> ds(static_cast<size_t>(N + d));
    for (int64_t b = lo; b < hi; ++b)
      sample_backward(dqkv + b * N * 3 * D, fresh, dout + b * D, probs + b * H * N, qkv, b, N, H,
                      d, ds.data());
  });
}

}  // namespace vit::kernels
