// Attention ops: exact softmax attention (kernels/attention), the same fused with its qkv
// projection (qkv_attention), the class token's row alone (kernels/class_attention, also fused),
// and FAVOR+ (kernels/favor), each a shape check, a forward kernel call and the backward closure
// beside it. The closures capture only what their backward kernel reads; the memory each keeps
// alive is noted at the capture.
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/ops.hpp"
#include "autograd/ops_profile.hpp"
#include "kernels/attention.hpp"
#include "kernels/class_attention.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"
#include "kernels/favor.hpp"

namespace vit {

namespace {
// Short sequences in training keep the attention probabilities for backward (up to this many
// floats per call, 64 MiB, and this many tokens).
constexpr int64_t kKeepProbs = int64_t{1} << 24;
constexpr int64_t kKeepProbsMaxTokens = 1024;

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

// x [B, N, C], w [3D, C'] (C' checked by the caller), b [3D] or undefined: the fused ops' inputs.
void check_projection(const Var& x, const Var& w, const Var& b, const char* op) {
  VIT_CHECK(x.defined() && w.defined() && x.value().dim() == 3 && w.value().dim() == 2, op,
            ": need x [B, N, C] and w [3D, C], got ", x.defined() ? x.shape() : Shape{}, " and ",
            w.defined() ? w.shape() : Shape{});
  if (b.defined())
    VIT_CHECK(b.value().dim() == 1 && b.size(0) == w.size(0), op, ": bias ", b.shape(),
              " must be [", w.size(0), "] for w ", w.shape());
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
  const bool grad = grad_enabled() && qkv.requires_grad();
  const int64_t probs_floats = kernels::attention_probs_floats(dims, drop);
  const bool keep = grad && N <= kKeepProbsMaxTokens && probs_floats <= kKeepProbs;
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

Var qkv_attention(const Var& x, const Var& w, const Var& b, int64_t heads) {
  check_projection(x, w, b, "qkv_attention");
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), three_d = w.size(0);
  // Per group of samples, dx rows = dqkv w reads w in place when 3D <= 256 (kernels/gemm); a
  // wider w would be packed again for every group.
  constexpr int64_t kMaxFusedWidth = 256;
  // Groups of up to 128 rows: dqkv stays in L2 and dx's product reads w in place.
  constexpr int64_t kGroupRows = 128;
  const bool grad = grad_enabled() && (x.requires_grad() || w.requires_grad() ||
                                       (b.defined() && b.requires_grad()));
  const int64_t d = heads > 0 && three_d % (3 * heads) == 0 ? three_d / 3 / heads : 0;
  const kernels::AttentionDims dims{B, N, heads, d};
  if (!grad || three_d > kMaxFusedWidth || w.size(1) != C || d == 0 ||
      !kernels::attention_in_cache(dims, {}) ||
      kernels::attention_probs_floats(dims, {}) > kKeepProbs)
    return attention(linear(x, w, b), heads);
  Tensor qkv = Tensor::empty({B, N, three_d});
  kernels::gemm_bias(false, true, B * N, three_d, C, 1.0f, x.value().data(), C, w.value().data(),
                     C, 0.0f, qkv.data(), three_d, b.defined() ? b.value().data() : nullptr);
  Tensor out = Tensor::empty({B, N, three_d / 3});
  Tensor probs = Tensor::empty({kernels::attention_probs_floats(dims, {})});
  kernels::attention_forward(out.data(), nullptr, qkv.data(), dims, {}, probs.data());
  // Held for backward: x (as linear would), qkv and probs (as attention would).
  const std::vector<Var> inputs = b.defined() ? std::vector<Var>{x, w, b} : std::vector<Var>{x, w};
  return profiled_record(out, inputs, [x, w, b, qkv, probs, dims, N, C,
                                       three_d](const Tensor& dout) {
    const int64_t chunks = std::min(dims.batch, kReduceChunks);
    bool fresh = false;
    float* dx = x.requires_grad() ? x.grad_for_write(fresh) : nullptr;
    // Chunk c's partial sums (written by its first group, then added to), summed in chunk order.
    Tensor dw = w.requires_grad() ? Tensor::empty({chunks, three_d, C}) : Tensor();
    const bool bias = b.defined() && b.requires_grad();
    Tensor db = bias ? Tensor::zeros({chunks, three_d}) : Tensor();
    const float* xv = x.value().data();
    const float* wv = w.value().data();
    kernels::attention_backward_by_samples(
        dout.data(), probs.data(), qkv.data(), dims, chunks, std::max<int64_t>(1, kGroupRows / N),
        [&](int64_t c, int64_t s0, int64_t s1, const float* g) {
          const int64_t r0 = s0 * N, rows = (s1 - s0) * N;
          const bool first = s0 == dims.batch * c / chunks;
          if (dx)  // dx = dqkv w
            kernels::gemm(false, false, rows, C, three_d, 1.0f, g, three_d, wv, C,
                          fresh ? 0.0f : 1.0f, dx + r0 * C, C);
          if (dw.defined())  // chunk c's share of dw = dqkv^T x
            kernels::gemm(true, false, three_d, C, rows, 1.0f, g, three_d, xv + r0 * C, C,
                          first ? 0.0f : 1.0f, dw.data() + c * three_d * C, C);
          if (bias) kernels::add_column_sums(db.data() + c * three_d, g, rows, three_d);
        });
    if (dw.defined()) kernels::column_sums(w.grad().data(), dw.data(), chunks, three_d * C);
    if (bias) kernels::column_sums(b.grad().data(), db.data(), chunks, three_d);
  }, "qkv_attention");
}

Var class_attention(const Var& qkv, int64_t heads) {
  int64_t B = 0, N = 0, d = 0;
  check_qkv(qkv, heads, "class_attention", B, N, d);
  VIT_CHECK(N > 0, "class_attention: qkv ", qkv.shape(), " has no tokens");
  const kernels::AttentionDims dims{B, N, heads, d};
  Tensor out = Tensor::empty({B, heads * d});
  Tensor probs = Tensor::empty({B, heads, N});
  kernels::class_attention_forward(out.data(), probs.data(), qkv.value().data(), dims);
  // Held for backward: probs (B*H*N floats) besides the input qkv.
  return profiled_record(out, {qkv}, [qkv, probs, dims](const Tensor& dout) {
    if (!qkv.requires_grad()) return;
    bool fresh = false;
    float* dqkv = qkv.grad_for_write(fresh);
    kernels::class_attention_backward(dqkv, fresh, dout.data(), probs.data(), qkv.value().data(),
                                      dims);
  }, "class_attention");
}

Var qkv_class_attention(const Var& x, const Var& w, const Var& b, int64_t heads) {
  check_projection(x, w, b, "qkv_class_attention");
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), three_d = w.size(0), D = three_d / 3;
  VIT_CHECK(N > 0, "qkv_class_attention: x ", x.shape(), " has no tokens");
  VIT_CHECK(w.size(1) == C && three_d % 3 == 0 && heads > 0 && D % heads == 0 && D > 0,
            "qkv_class_attention: w ", w.shape(), " must be [3D, ", C,
            "] with D divisible by heads = ", heads);
  const kernels::AttentionDims dims{B, N, heads, D / heads};
  // qkv [B, N, 3D] with keys and values for every token but the query of token 0 only (the
  // other q entries are never read): x W[D:3D]^T + b[D:3D], and x[:, 0] W[0:D]^T + b[0:D] (rows
  // N C floats apart in x, N 3D in qkv).
  const float* xv = x.value().data();
  const float* wv = w.value().data();
  const float* bv = b.defined() ? b.value().data() : nullptr;
  Tensor qkv = Tensor::empty({B, N, three_d});
  kernels::gemm_bias(false, true, B * N, 2 * D, C, 1.0f, xv, C, wv + D * C, C, 0.0f, qkv.data() + D,
                     three_d, bv ? bv + D : nullptr);
  kernels::gemm_bias(false, true, B, D, C, 1.0f, xv, N * C, wv, C, 0.0f, qkv.data(), N * three_d, bv);
  Tensor out = Tensor::empty({B, D});
  Tensor probs = Tensor::empty({B, heads, N});
  kernels::class_attention_forward(out.data(), probs.data(), qkv.data(), dims);
  // Held for backward: x (as linear would), qkv and probs (as class_attention would).
  const std::vector<Var> inputs = b.defined() ? std::vector<Var>{x, w, b} : std::vector<Var>{x, w};
  return profiled_record(out, inputs, [x, w, b, qkv, probs, dims, C, D](const Tensor& dout) {
    const int64_t rows = dims.batch * dims.tokens, ldq = dims.tokens * 3 * D;  // ldq: rows 0
    Tensor g = Tensor::empty(qkv.shape());  // dqkv: q columns 0 past each sample's row 0
    kernels::class_attention_backward(g.data(), true, dout.data(), probs.data(), qkv.data(), dims);
    const float* wd = w.value().data();
    const float* xd = x.value().data();
    if (x.requires_grad()) {  // dx = dkv W[D:3D], plus dq_0 W[0:D] in each sample's row 0
      bool fresh = false;
      float* dx = x.grad_for_write(fresh);
      kernels::gemm(false, false, rows, C, 2 * D, 1.0f, g.data() + D, 3 * D, wd + D * C, C,
                    fresh ? 0.0f : 1.0f, dx, C);
      kernels::gemm(false, false, dims.batch, C, D, 1.0f, g.data(), ldq, wd, C, 1.0f, dx,
                    dims.tokens * C);
    }
    if (w.requires_grad()) {  // dW[D:3D] += dkv^T x, dW[0:D] += dq_0^T x[:, 0]
      float* dw = w.grad().data();
      kernels::gemm(true, false, 2 * D, C, rows, 1.0f, g.data() + D, 3 * D, xd, C, 1.0f,
                    dw + D * C, C);
      kernels::gemm(true, false, D, C, dims.batch, 1.0f, g.data(), ldq, xd, dims.tokens * C, 1.0f,
                    dw, C);
    }
    if (b.defined() && b.requires_grad())
      kernels::column_sums(b.grad().data(), g.data(), rows, 3 * D);
  }, "qkv_class_attention");
}

namespace {
// favor_attention for the first `queries` query rows (0: all): [B, N, D], or [B, D] for 1.
Var favor_rows(const Var& qkv, int64_t heads, const Tensor& projection, FavorKernel kernel,
               float eps, int64_t queries, const char* op) {
  int64_t B = 0, N = 0, d = 0;
  check_qkv(qkv, heads, op, B, N, d);
  VIT_CHECK(projection.defined() && projection.dim() == 2 && projection.size(1) == d &&
                projection.size(0) > 0,
            op, ": projection must be [F, d] with d = ", d, ", got ",
            projection.defined() ? projection.shape() : Shape{});
  VIT_CHECK(eps >= 0.0f && std::isfinite(eps), op, ": eps must be >= 0, got ", eps);
  const int64_t F = projection.size(0);
  kernels::FavorDims dims{B, N, heads, d, F};
  dims.queries = queries;
  const int64_t Q = dims.query_rows();
  const kernels::FavorMap map =
      kernel == FavorKernel::Softmax ? kernels::FavorMap::Softmax : kernels::FavorMap::Relu;
  Tensor out = queries == 1 ? Tensor::empty({B, heads * d}) : Tensor::empty({B, Q, heads * d});
  Tensor kv = Tensor::empty({B, heads, F, d});
  Tensor ksum = Tensor::empty({B, heads, F});
  Tensor den = Tensor::empty({B, heads, Q});
  Tensor key_stab = Tensor::empty({B, heads});
  kernels::favor_forward(out.data(), kv.data(), ksum.data(), den.data(), key_stab.data(),
                         qkv.value().data(), projection.data(), dims, map, eps);
  // Held for backward: out (shared), kv (B*H*F*d), ksum (B*H*F), den (B*H*Q), key_stab (B*H) and a
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
  }, op);
}
}  // namespace

Var favor_attention(const Var& qkv, int64_t heads, const Tensor& projection, FavorKernel kernel,
                    float eps) {
  return favor_rows(qkv, heads, projection, kernel, eps, 0, "favor_attention");
}

Var favor_class_attention(const Var& qkv, int64_t heads, const Tensor& projection,
                          FavorKernel kernel, float eps) {
  return favor_rows(qkv, heads, projection, kernel, eps, 1, "favor_class_attention");
}

}  // namespace vit
