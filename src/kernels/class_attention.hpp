// Softmax attention for the class token's query alone. A ViT pooled on token 0 needs only row 0
// of its last block's attention: per (b, h), p = softmax(q_0 k^T / sqrt(d)) over all N keys and
// o = p v, O(N d) instead of O(N^2 d). Layout and letters as in kernels/attention.hpp (only the
// first four fields of AttentionDims are read).
#pragma once
#include "kernels/attention.hpp"

namespace vit::kernels {

// out [B, D] (heads merged: out[b, h*d + c]) and probs [B, H, N], kept for backward, from qkv
// [B, N, 3D]. Parallel over samples.
void class_attention_forward(float* out, float* probs, const float* qkv, const AttentionDims& dims);

// dqkv [B, N, 3D] += the gradient of the forward above given dout [B, D] (= when fresh; then
// the q columns of rows 1..N-1, which get no gradient, are written 0). Each sample's rows are
// written by one thread in a fixed order: bit-identical for any thread count.
void class_attention_backward(float* dqkv, bool fresh, const float* dout, const float* probs,
                              const float* qkv, const AttentionDims& dims);

}  // namespace vit::kernels
