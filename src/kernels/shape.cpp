// Shape kernels (see shape.hpp): plain copy loops, parallel over output rows.
#include "kernels/shape.hpp"

#include "core/parallel.hpp"

namespace vit::kernels {

namespace {
int64_t grain_for(int64_t row) { return 4096 / (row > 0 ? row : 1) + 1; }
}  // namespace

void permute_0213_forward(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t E) {
  // one output row (a, c, b, :) per index; rows ordered (a, c, b)
  parallel_range(0, A * C * B, grain_for(E), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r % B, c = (r / B) % C, a = r / (B * C);
      const float* src = x + ((a * B + b) * C + c) * E;
      float* dst = out + r * E;
      for (int64_t e = 0; e < E; ++e) dst[e] = src[e];
    }
  });
}

void permute_0213_backward(float* dx, const float* dout, int64_t A, int64_t B, int64_t C, int64_t E) {
  // one dx row (a, b, c, :) per index; rows ordered (a, b, c)
  parallel_range(0, A * B * C, grain_for(E), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t c = r % C, b = (r / C) % B, a = r / (B * C);
      const float* src = dout + ((a * C + c) * B + b) * E;
      float* dst = dx + r * E;
      for (int64_t e = 0; e < E; ++e) dst[e] += src[e];
    }
  });
}

// Both directions walk the same (b, patch, c, py) rows of P contiguous pixels. PatchPtr and
// ImagePtr are float* or const float*: the written side is the non-const one.
template <bool kForward, typename PatchPtr, typename ImagePtr>
static void patchify_impl(PatchPtr patches, ImagePtr images, int64_t B, int64_t C, int64_t H,
                          int64_t W, int64_t P) {
  const int64_t gh = H / P, gw = W / P, L = gh * gw, row = C * P * P;
  parallel_range(0, B * L, grain_for(row), [&](int64_t lo, int64_t hi) {
    for (int64_t bl = lo; bl < hi; ++bl) {
      const int64_t b = bl / L, l = bl % L, gy = l / gw, gx = l % gw;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t py = 0; py < P; ++py) {
          auto pix = images + ((b * C + c) * H + gy * P + py) * W + gx * P;
          auto dst = patches + bl * row + (c * P + py) * P;
          for (int64_t px = 0; px < P; ++px) {
            if constexpr (kForward) dst[px] = pix[px];
            else pix[px] += dst[px];
          }
        }
    }
  });
}

void patchify_forward(float* patches, const float* images, int64_t B, int64_t C, int64_t H,
                      int64_t W, int64_t P) {
  patchify_impl<true>(patches, images, B, C, H, W, P);
}

void patchify_backward(float* dimages, const float* dpatches, int64_t B, int64_t C, int64_t H,
                       int64_t W, int64_t P) {
  // each image pixel belongs to exactly one patch: no two threads touch the same dimages element
  patchify_impl<false>(dpatches, dimages, B, C, H, W, P);
}

void concat_cls_forward(float* out, const float* cls, const float* x, int64_t B, int64_t N, int64_t D) {
  parallel_range(0, B * (N + 1), grain_for(D), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / (N + 1), n = r % (N + 1);
      const float* src = n == 0 ? cls : x + (b * N + n - 1) * D;
      float* dst = out + r * D;
      for (int64_t d = 0; d < D; ++d) dst[d] = src[d];
    }
  });
}

void concat_cls_backward(float* dcls, float* dx, const float* dout, int64_t B, int64_t N, int64_t D) {
  if (dx) {
    parallel_range(0, B * N, grain_for(D), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t b = r / N, n = r % N;
        const float* src = dout + (b * (N + 1) + n + 1) * D;
        float* dst = dx + r * D;
        for (int64_t d = 0; d < D; ++d) dst[d] += src[d];
      }
    });
  }
  if (dcls) {
    // B rows of D: small, one thread, batch walked in order
    for (int64_t b = 0; b < B; ++b) {
      const float* src = dout + b * (N + 1) * D;
      for (int64_t d = 0; d < D; ++d) dcls[d] += src[d];
    }
  }
}

void select_token_forward(float* out, const float* x, int64_t B, int64_t N, int64_t D, int64_t index) {
  for (int64_t b = 0; b < B; ++b) {
    const float* src = x + (b * N + index) * D;
    for (int64_t d = 0; d < D; ++d) out[b * D + d] = src[d];
  }
}

void select_token_backward(float* dx, const float* dout, int64_t B, int64_t N, int64_t D, int64_t index) {
  for (int64_t b = 0; b < B; ++b) {
    float* dst = dx + (b * N + index) * D;
    for (int64_t d = 0; d < D; ++d) dst[d] += dout[b * D + d];
  }
}

void mean_tokens_forward(float* out, const float* x, int64_t B, int64_t N, int64_t D) {
  const float inv_n = 1.0f / static_cast<float>(N);
  parallel_range(0, B, grain_for(N * D), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      float* o = out + b * D;
      for (int64_t d = 0; d < D; ++d) o[d] = 0.0f;
      for (int64_t n = 0; n < N; ++n) {
        const float* src = x + (b * N + n) * D;
        for (int64_t d = 0; d < D; ++d) o[d] += src[d];
      }
      for (int64_t d = 0; d < D; ++d) o[d] *= inv_n;
    }
  });
}

void mean_tokens_backward(float* dx, const float* dout, int64_t B, int64_t N, int64_t D) {
  const float inv_n = 1.0f / static_cast<float>(N);
  parallel_range(0, B * N, grain_for(D), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* g = dout + (r / N) * D;
      float* dst = dx + r * D;
      for (int64_t d = 0; d < D; ++d) dst[d] += g[d] * inv_n;
    }
  });
}

}  // namespace vit::kernels
