// Attention ops: exact softmax attention (kernels/attention) and FAVOR+ (kernels/favor), each a
// shape check, a forward kernel call and the backward closure beside it. The closures capture
// only what their backward kernel reads; the memory each keeps alive is noted at the capture.
#include <cmath>

#include "autograd/ops.hpp"
#include "autograd/ops_profile.hpp"
#include "kernels/attention.hpp"
#include "kernels/favor.hpp"

namespace vit {

namespace {
// qkv [B, N, 3D] with D divisible by heads -> (B, N, H, d).
void check_qkv(const Var& qkv, int64_t heads, const char* op, int64_t& B, int64_t& N, int64_t& d) {
  VIT_CHECK(qkv.defined() && qkv.value().dim() == 3, op, ": qkv must be [B, N, 3D], got ",
            qkv.defined() ? qkv.shape() : Shape{});
  VIT_CHECK(heads > 0, op, ": heads must be positive, got ", heads);
  const int64_t three_d = qkv.size(2);
  VIT_CHECK(three_d % 3 == 0 && (three_d / 3) % heads == 0 && three_d > 0, op, ": qkv shape ",
            qkv.shape(), " last axis must be 3 * D with D divisible by heads = ", heads);
  B = qkv.size(0);
  N = qkv.size(1);
  d = three_d / 3 / heads;
}
}  // namespace

Var attention(const Var& qkv, int64_t heads, float attn_dropout, uint64_t dropout_key) {
  int64_t B = 0, N = 0, d = 0;
  check_qkv(qkv, heads, "attention", B, N, d);
  VIT_CHECK(attn_dropout >= 0.0f && attn_dropout < 1.0f, "attention: attn_dropout ", attn_dropout,
            " must be in [0, 1)");
  const kernels::AttentionDims dims{B, N, heads, d};
  const kernels::AttentionDropout drop{attn_dropout, dropout_key};
  Tensor out = Tensor::empty({B, N, heads * d});
  // Short sequences in training keep the probabilities (~B*H*N*N floats, at most kKeepProbs):
  // backward then skips recomputing them. Long ones keep the row log-sum-exp instead; eval
  // keeps neither.
  constexpr int64_t kKeepProbs = int64_t{1} << 24;  // 64 MiB per attention call
  const bool grad = grad_enabled() && qkv.requires_grad();
  const int64_t probs_floats = kernels::attention_probs_floats(dims, drop);
  const bool keep = grad && N <= 1024 && probs_floats <= kKeepProbs;
  Tensor probs = keep ? Tensor::empty({probs_floats}) : Tensor();
  Tensor lse = grad && !keep ? Tensor::empty({B, heads, N}) : Tensor();
  kernels::attention_forward(out.data(), lse.defined() ? lse.data() : nullptr,
                             qkv.value().data(), dims, drop, keep ? probs.data() : nullptr);
  // Held for backward: the output itself (shared storage, B*N*D), and probs or lse (B*H*N
  // floats), besides the input qkv. Backward scratch is O(rows x N) per thread.
  return profiled_record(out, {qkv}, [qkv, out, lse, probs, dims, drop](const Tensor& dout) {
    if (!qkv.requires_grad()) return;
    bool fresh = false;
    float* dqkv = qkv.grad_for_write(fresh);
    kernels::attention_backward(dqkv, dout.data(), out.data(),
                                lse.defined() ? lse.data() : nullptr, qkv.value().data(),
                                dims, drop, probs.defined() ? probs.data() : nullptr, fresh);
  }, "attention");
}

Var favor_attention(const Var& qkv, int64_t heads, const Tensor& projection, FavorKernel kernel,
                    float eps) {
  int64_t B = 0, N = 0, d = 0;
  check_qkv(qkv, heads, "favor_attention", B, N, d);
  VIT_CHECK(projection.defined() && projection.dim() == 2 && projection.size(1) == d &&
                projection.size(0) > 0,
            "favor_attention: projection must be [F, d] with d = ", d, ", got ",
            projection.defined() ? projection.shape() : Shape{});
  VIT_CHECK(eps >= 0.0f && std::isfinite(eps), "favor_attention: eps must be >= 0, got ", eps);
  const int64_t F = projection.size(0);
  const kernels::FavorDims dims{B, N, heads, d, F};
  const kernels::FavorMap map =
      kernel == FavorKernel::Softmax ? kernels::FavorMap::Softmax : kernels::FavorMap::Relu;
  Tensor out = Tensor::empty({B, N, heads * d});
  Tensor kv = Tensor::empty({B, heads, F, d});
  Tensor ksum = Tensor::empty({B, heads, F});
  Tensor den = Tensor::empty({B, heads, N});
  Tensor key_stab = Tensor::empty({B, heads});
  kernels::favor_forward(out.data(), kv.data(), ksum.data(), den.data(), key_stab.data(),
                         qkv.value().data(), projection.data(), dims, map, eps);
  // Held for backward: out (shared), kv (B*H*F*d), ksum (B*H*F), den (B*H*N), key_stab (B*H) and a
  // copy of the projection (F*d: a redraw between forward and backward must not change the gradient).
  // phi(Q) and phi(K) (N*F per head) are recomputed, not kept.
  const Tensor w = projection.clone();
  return profiled_record(out, {qkv}, [qkv, out, kv, ksum, den, key_stab, w, dims, map,
                                      eps](const Tensor& dout) {
    if (!qkv.requires_grad()) return;
    bool fresh = false;
    float* dqkv = qkv.grad_for_write(fresh);
    kernels::favor_backward(dqkv, dout.data(), out.data(), kv.data(), ksum.data(), den.data(),
                            key_stab.data(), qkv.value().data(), w.data(), dims, map, eps, fresh);
  }, "favor_attention");
}

}  // namespace vit
