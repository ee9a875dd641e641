// One (batch, head) pair of exact softmax attention done whole in cache with AVX2 + FMA, for the
// short sequences and narrow heads of small ViTs (W1: 50 tokens, d = 16). The GEMM path spends
// most of such a head on tile edges (50 = 3 x 16 + 2) and call set-up; here score rows are padded
// to Np = N rounded up to 8 (padding probabilities are exactly 0), so every product and the
// softmax run on whole 8-lane vectors, in register tiles sized for d and N. kernels/attention
// picks this path when head_kernel_applies(); the GEMM path stays the portable reference.
// Every output element is one fixed-order sum, so results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "kernels/prefetch.hpp"

namespace vit::kernels::detail {

constexpr int64_t kHeadMaxTokens = 128;  // scores of one head: N x Np floats, <= 64 KiB
constexpr int64_t kHeadMaxDim = 64;

inline int64_t padded_tokens(int64_t N) { return (N + 7) / 8 * 8; }

// Whether this CPU has the path and (N, d) fit it: d a multiple of 8 up to kHeadMaxDim,
// 1 <= N <= kHeadMaxTokens.
bool head_kernel_applies(int64_t tokens, int64_t head_dim);

// The operands of one head: row n of q, k, v at q + n * ld (and so on); scores are scaled by
// `scale` (1 / sqrt(d)).
struct HeadOperands {
  const float* q;
  const float* k;
  const float* v;
  int64_t ld;
  int64_t tokens;    // N
  int64_t head_dim;  // d
  float scale;
};

// Per-thread scratch both calls need, in floats.
int64_t head_scratch_floats(int64_t tokens, int64_t head_dim);

// o[n * ldo + c] = sum_j P[n, j] v[j, c] with P = softmax(scale q k^T) row-wise. p [N, Np]
// receives P (columns N..Np are 0; null: P stays in scratch); lse[n], when lse is not null, the
// log-sum-exp of row n of the scaled scores. `next` (or null): what to prefetch meanwhile (the
// next head's operands), spread over this head's row blocks.
void head_forward(const HeadOperands& x, float* o, int64_t ldo, float* p, float* lse,
                  float* scratch, Trickle* next = nullptr);

// The gradients of the forward above, given dout (rows at stride ldo) and the forward's p (or
// null: recomputed, bit-identical to the forward's): dq, dk, dv (rows at stride ldg) are stored
// when `fresh`, else added to. A fresh gradient is streamed past the cache when `stream_fresh`
// (and its rows are aligned): right for one read much later, wrong for scratch consumed at once.
// `next`: as for head_forward.
void head_backward(const HeadOperands& x, const float* dout, int64_t ldo, const float* p,
                   float* dq, float* dk, float* dv, int64_t ldg, bool fresh, bool stream_fresh,
                   float* scratch, Trickle* next = nullptr);

}  // namespace vit::kernels::detail
