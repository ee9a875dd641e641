// Exact multi-head softmax attention. Per (batch, head), blocks of query rows against all keys
// (scores [rows, N] in per-thread scratch, products by GEMM; memory linear in N), or for very long
// sequences flash-attention style tiles with an online softmax. Backward recomputes the
// probabilities from the saved row log-sum-exp, or takes them from the forward when the caller
// keeps them (short sequences in training). Not here: causal masks, FAVOR+ (kernels/favor), fp16.
// Letters: B batch, N tokens, H heads, d head width, D = H*d. qkv [B, N, 3D] in timm layout:
// q at column h*d + c, k at D + h*d + c, v at 2D + h*d + c.
#pragma once
#include <cstdint>
#include <functional>

namespace vit::kernels {

struct AttentionDims {
  int64_t batch = 0;     // B
  int64_t tokens = 0;    // N
  int64_t heads = 0;     // H
  int64_t head_dim = 0;  // d
  // Up to this many tokens a head is done by the dense path: blocks of query rows against all
  // keys, scores [rows, N] per thread (rows = N up to 1024 tokens, ~2^20 / N beyond, so memory is
  // linear in N), products by GEMM. Longer sequences use the flash path (O(tile) memory, tiles
  // with an online softmax). Tests set 0 to force the flash path.
  int64_t dense_max_tokens = int64_t{1} << 40;
  int64_t row_block = 0;  // dense path query rows per block; 0: automatic (see above)
  // Short sequences of narrow heads (N <= 128, d a multiple of 8 up to 64, no dropout, a CPU
  // with AVX2 + FMA) take the in-cache head kernel (kernels/attention_head) instead of the GEMM
  // calls of the dense path. Tests set false to compare the two.
  bool head_kernel = true;
};

// Attention-probability dropout: p == 0 means no mask. Element (b, h, i, j) is kept when a hash
// of (key, b, h, i, j) is at least p; kept probabilities are scaled by 1 / (1 - p).
struct AttentionDropout {
  float p = 0.0f;
  uint64_t key = 0;
};

// out [B, N, D] = softmax(q k^T / sqrt(d)) v per (b, h), heads merged (out[b, n, h*d + c]).
// lse [B, H, N] = log sum_j exp(q_i . k_j / sqrt(d)) (before dropout), kept for backward.
// probs, when not null (dense path only: N <= dense_max_tokens): attention_probs_floats()
// floats receive the probabilities before dropout, so that backward need not recompute them (a
// trade of ~B*H*N*N floats of memory for one of backward's three N x N x d products and its
// exps; worth it for short sequences). lse may be null when backward gets probs or never runs.
// Parallel over (b, h) pairs; each output row is computed by one thread.
void attention_forward(float* out, float* lse, const float* qkv, const AttentionDims& dims,
                       const AttentionDropout& dropout, float* probs = nullptr);

// The size of the kept probabilities: B*H*N*N, or B*H*N*Np with rows padded to a multiple of 8
// on the head-kernel path.
int64_t attention_probs_floats(const AttentionDims& dims, const AttentionDropout& dropout);

// dqkv [B, N, 3D] += gradient of the forward above (= when dqkv_fresh: dqkv is then not read),
// given dout [B, N, D] and the forward's out and lse (and its probs, or null to recompute them).
// Parallel over (b, h) pairs: each pair owns its dq, dk, dv slices, accumulated in a fixed order,
// so the result is bit-identical for any thread count.
void attention_backward(float* dqkv, const float* dout, const float* out, const float* lse,
                        const float* qkv, const AttentionDims& dims, const AttentionDropout& dropout,
                        const float* probs = nullptr, bool dqkv_fresh = false);

// Whether attention_forward/backward take the in-cache head kernel for these dims (see
// AttentionDims::head_kernel): the case attention_backward_by_samples serves.
bool attention_in_cache(const AttentionDims& dims, const AttentionDropout& dropout);

// attention_backward's gradient for a caller that consumes it at once (the qkv projection's
// backward), so that it never leaves the cache: requires attention_in_cache(dims, no dropout)
// and the forward's probs. The batch is cut into `chunks` ranges of samples (B * c / chunks on),
// run in parallel, each by one thread in order, `group` samples at a time: the dqkv rows of
// samples [s0, s1) are made in that thread's scratch g [(s1 - s0) * N, 3D], the same bits as
// attention_backward's, and handed to consume(c, s0, s1, g) on the same thread.
using DqkvConsumer =
    std::function<void(int64_t chunk, int64_t s0, int64_t s1, const float* g)>;
void attention_backward_by_samples(const float* dout, const float* probs, const float* qkv,
                                   const AttentionDims& dims, int64_t chunks, int64_t group,
                                   const DqkvConsumer& consume);

}  // namespace vit::kernels
