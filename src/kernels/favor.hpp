// FAVOR+ (Performer) linear attention kernels and the orthogonal random-feature drawer
// (design: ANCHORS.md B1). Cost O(N F d) per (batch, head); no N x N matrix anywhere.
// Not here: causal (prefix-sum) FAVOR+, trigonometric features, Givens-structured projections,
// and the redraw policy (the nn module decides when to call draw_favor_projection).
// Letters: B batch, N tokens, H heads, d head width, D = H*d, F features. qkv [B, N, 3D] in timm
// layout (q at column h*d + c, k at D + h*d + c, v at 2D + h*d + c).
#pragma once
#include <cstdint>

#include "core/rng.hpp"
#include "core/tensor.hpp"

namespace vit {

// Orthogonal random features [F, d]: ceil(F/d) blocks, each the Gram-Schmidt (QR) orthonormal
// rows of a d x d standard Gaussian matrix (in double), stacked and truncated to F rows; every
// row is then rescaled by the norm of an independent d-dim Gaussian vector (chi_d distributed,
// performer-pytorch "ortho_scaling 0"), so each row's marginal is N(0, I_d).
Tensor draw_favor_projection(int64_t features, int64_t d, Rng& rng);

// floor(d ln d), performer-pytorch's default feature count (16 -> 44, 32 -> 110, 64 -> 266);
// at least 1.
int64_t favor_default_features(int64_t d);

namespace kernels {

enum class FavorMap {
  // phi(x) = exp(w.x' - |x'|^2/2 - stab) / sqrt(F) + eps, x' = x d^-1/4 (positive softmax features)
  Softmax,
  // phi(x) = relu(w.x') + eps, x' = x d^-1/4 (performer-pytorch's generalized kernel; no 1/sqrt(F):
  // a common factor cancels in the normalisation, it would only change eps's relative weight)
  Relu,
};

struct FavorDims {
  int64_t batch = 0;     // B
  int64_t tokens = 0;    // N
  int64_t heads = 0;     // H
  int64_t head_dim = 0;  // d
  int64_t features = 0;  // F
  // d and F multiples of 8 on a CPU with AVX2 + FMA: the per-head products run as the in-cache
  // register tiles of kernels/head_products instead of GEMM calls. Tests set false to compare.
  bool head_products = true;
  // Query rows computed: the first `queries` of each head (0: all N). A class-pooled ViT's last
  // block needs only the class token's (1); keys and values are still all N rows.
  int64_t queries = 0;
  int64_t query_rows() const { return queries > 0 ? queries : tokens; }
};

// The smallest denominator phi(q) . sum_j phi(k_j) used: den = max(den, kFavorMinDen). With
// eps > 0 the true denominator is >= N F eps^2 > 0 so the clamp only matters for eps = 0 (e.g.
// every relu feature zero); there it makes the output 0 instead of NaN, with zero gradient
// through the clamped denominator.
constexpr float kFavorMinDen = 1e-30f;

// out [B, Q, D] = phi(Q) kv / (phi(Q) ksum) per (b, h), heads merged, Q = query_rows().
// Saves for backward: kv [B, H, F, d] = phi(K)^T V, ksum [B, H, F] = phi(K)^T 1,
// den [B, H, Q] = phi(Q) ksum (before the clamp), key_stab [B, H]. projection [F, d].
// Stabilisers (softmax map): per query row max_f w_f.q'; per (b, h) key_stab = the max over keys
// and features of w_f.k' (0 for the relu map). Parallel over (b, h): each pair's sums run in a
// fixed order on one thread; rows go in cache-sized blocks.
void favor_forward(float* out, float* kv, float* ksum, float* den, float* key_stab,
                   const float* qkv, const float* projection, const FavorDims& dims, FavorMap map,
                   float eps);

// dqkv [B, N, 3D] += gradient of favor_forward given dout [B, Q, D] and the saved out, kv, ksum,
// den, key_stab; fresh: dqkv holds nothing yet (not even zeros) and is written, not added to
// (the q columns of rows Q..N-1, which get no gradient, are written 0).
// phi(K) and phi(Q) are recomputed (same code, same bits); the stabilisers are constants.
void favor_backward(float* dqkv, const float* dout, const float* out, const float* kv,
                    const float* ksum, const float* den, const float* key_stab, const float* qkv,
                    const float* projection, const FavorDims& dims, FavorMap map, float eps,
                    bool fresh = false);

}  // namespace kernels
}  // namespace vit
