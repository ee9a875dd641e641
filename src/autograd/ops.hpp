// Every differentiable op of the engine. Each is defined in autograd/ops_<family>.cpp as a short
// adapter: check shapes (VIT_CHECK naming them), call the forward kernel from kernels/<family>,
// and record the backward closure, which calls the matching backward kernel, right beside it.
// Dimension letters: B batch, N tokens, D model width, H heads, d = D/H head width,
// F FAVOR+ features, K classes, M/K/N for plain matrices.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/variable.hpp"
#include "core/rng.hpp"

namespace vit {

// ---- linalg (ops_linalg.cpp, kernels/gemm) ----
// a [M, K] @ b [K, N] -> [M, N]
Var matmul(const Var& a, const Var& b);
// Batched: a [B, M, K] (or [B, K, M] if trans_a) @ b [B, K, N] (or [B, N, K] if trans_b) -> [B, M, N]
Var bmm(const Var& a, const Var& b, bool trans_a = false, bool trans_b = false);
// y = x w^T + b: x [..., in], w [out, in], b [out] (may be undefined) -> [..., out]
Var linear(const Var& x, const Var& w, const Var& b);
// gelu(x w^T + b), fused in the GEMM epilogue; same result as gelu(linear(x, w, b)).
Var linear_gelu(const Var& x, const Var& w, const Var& b);
// residual + x w^T + b, the residual [..., out] added in the GEMM epilogue (a pre-LN block's
// "x + proj(h)" in one pass); the same bits as add(residual, linear(x, w, b)).
Var linear_residual(const Var& x, const Var& w, const Var& b, const Var& residual);
// A pre-LN block's MLP with its residual, residual + fc2(gelu(fc1(x))):
// linear_residual(linear_gelu(x, w1, b1), w2, b2, residual), the same bits, with GELU's backward
// multiplied into the GEMM that computes its input gradient (one pass over [rows, hidden] less).
Var mlp_residual(const Var& x, const Var& w1, const Var& b1, const Var& w2, const Var& b2,
                 const Var& residual);

// ---- elementwise (ops_elementwise.cpp, kernels/elementwise) ----
// a + b where b has a's shape or a suffix of it (bias [D] over [..., D], pos_embed [1, N, D]
// over [B, N, D]: leading 1s of b are dropped before matching the suffix).
Var add(const Var& a, const Var& b);
// a * b with the same broadcast rule as add.
Var mul(const Var& a, const Var& b);
Var scale(const Var& a, float s);
Var gelu(const Var& x);  // exact: x * Phi(x) with erf
Var sum(const Var& x);   // all elements -> [1]
Var mean(const Var& x);  // all elements -> [1]

// ---- normalisation and softmax (ops_norm.cpp, kernels/layernorm, kernels/softmax) ----
// LayerNorm over the last axis: x [..., D], weight [D], bias [D].
Var layer_norm(const Var& x, const Var& weight, const Var& bias, float eps = 1e-6f);
Var softmax(const Var& x);  // over the last axis
// Mean cross-entropy of logits [B, K] against labels with timm's label smoothing:
// (1 - s) * (-log p_y) + s * mean_c(-log p_c). Fused with log-softmax. -> [1]
Var cross_entropy(const Var& logits, const std::vector<int32_t>& labels, float smoothing = 0.0f);

// ---- shape (ops_shape.cpp) ----
Var reshape(const Var& x, const Shape& shape);
// [A, B, C, E] -> [A, C, B, E] (heads split/merge in the composed reference attention)
Var permute_0213(const Var& x);
// images [B, C, H, W] -> patches [B, (H/P)*(W/P), C*P*P], each patch flattened (c, row, col)
Var patchify(const Var& images, int64_t patch);
// cls [1, 1, D] prepended to x [B, N, D] -> [B, N+1, D]
Var concat_cls(const Var& cls, const Var& x);
// x [B, N, D] -> [B, D]: token `index`
Var select_token(const Var& x, int64_t index);
// x [B, N, D] -> [B, D]: mean over tokens
Var mean_tokens(const Var& x);

// ---- regularisation (ops_dropout.cpp) ----
// Inverted dropout with keep mask drawn from `rng` (in element order, one thread: the mask
// does not depend on the thread count). p = 0 returns x itself.
Var dropout(const Var& x, float p, Rng& rng);
// Stochastic depth: x [B, ...], one Bernoulli(1-p) per sample, scaled by 1/(1-p).
Var drop_path(const Var& x, float p, Rng& rng);

// ---- attention (ops_attention.cpp, kernels/attention, kernels/class_attention, kernels/favor) ----
// Multi-head softmax self-attention from a fused projection qkv [B, N, 3D] (timm layout: q, k, v
// blocks, each head-major) -> [B, N, D] (heads merged, ready for the output projection).
// softmax(q k^T / sqrt(d)) v, computed per (batch, head) in tiles so no N x N matrix is kept
// for backward (only the row log-sum-exp, B*H*N floats). attn_dropout > 0 drops probabilities
// with a mask hashed from (dropout_key, b, h, i, j), re-created in backward.
Var attention(const Var& qkv, int64_t heads, float attn_dropout = 0.0f, uint64_t dropout_key = 0);
// attention(linear(x, w, b), heads) without dropout: x [B, N, C], w [3D, C], b [3D] or undefined.
// The same values; in training, when the in-cache head kernel applies and 3D <= 256, backward
// hands each few samples' dqkv straight to the projection's backward while it is in cache (dx
// rows, and w's and b's gradients as kReduceChunks fixed partial sums added in order), instead of
// writing all of dqkv out and reading it back twice. Otherwise it is that composition.
Var qkv_attention(const Var& x, const Var& w, const Var& b, int64_t heads);
// Row 0 of attention(qkv, heads), the class token's, as [B, D]: its query against every token's
// key and value, O(N d) per head. qkv's gradient has nothing in the q columns of rows 1..N-1.
Var class_attention(const Var& qkv, int64_t heads);
// class_attention(linear(x, w, b), heads) with the projection computing q for token 0 only
// (keys and values for all tokens): the same values, the gradients to rounding.
Var qkv_class_attention(const Var& x, const Var& w, const Var& b, int64_t heads);

enum class FavorKernel { Softmax, Relu };
// FAVOR+ (Performer) attention from qkv [B, N, 3D] with projection [F, d] (rows are random
// features, not trained) -> [B, N, D]. Softmax kernel: positive random features
// phi(x) = exp(w.x - |x|^2/2 - stab) / sqrt(F) + eps with x = q or k scaled by d^-1/4;
// per-row stabiliser for queries, per-(sample, head) for keys, both outside the gradient.
// Relu kernel: phi(x) = relu(w.x) + eps. Cost O(N F d): no N x N matrix.
Var favor_attention(const Var& qkv, int64_t heads, const Tensor& projection, FavorKernel kernel,
                    float eps = 1e-6f);
// Row 0 of favor_attention (the class token's) as [B, D]; keys and values from all N tokens.
Var favor_class_attention(const Var& qkv, int64_t heads, const Tensor& projection,
                          FavorKernel kernel, float eps = 1e-6f);

}  // namespace vit
