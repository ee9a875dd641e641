// Regularisation ops: inverted dropout and drop path (stochastic depth). Masks are drawn here,
// serially in element (or sample) order from the caller's Rng, so a mask depends only on the
// stream, never on the thread count; kernels/dropout applies them. Callers skip these in eval.
#include "autograd/ops.hpp"
#include "autograd/ops_profile.hpp"
#include "kernels/dropout.hpp"

namespace vit {

namespace {
// keep with probability 1 - p (drop when u < p), kept entries scaled by 1 / (1 - p)
Tensor draw_keep_scale(int64_t n, float p, Rng& rng) {
  Tensor mask = Tensor::empty({n});
  const float kept = 1.0f / (1.0f - p);
  for (int64_t i = 0; i < n; ++i) mask[i] = rng.uniform() < p ? 0.0f : kept;
  return mask;
}
}  // namespace

Var dropout(const Var& x, float p, Rng& rng) {
  VIT_CHECK(p >= 0.0f && p < 1.0f, "dropout: p = ", p, " must be in [0, 1)");
  if (p == 0.0f) return x;
  const Tensor mask = draw_keep_scale(x.numel(), p, rng);
  Tensor out = Tensor::empty(x.shape());
  kernels::mask_forward(out.data(), x.value().data(), mask.data(), x.numel());
  return profiled_record(out, {x}, [x, mask](const Tensor& dout) {
    if (x.requires_grad()) kernels::mask_backward(x.grad().data(), dout.data(), mask.data(), x.numel());
  }, "dropout");
}

Var drop_path(const Var& x, float p, Rng& rng) {
  VIT_CHECK(p >= 0.0f && p < 1.0f, "drop_path: p = ", p, " must be in [0, 1)");
  VIT_CHECK(x.value().dim() >= 1 && x.size(0) > 0, "drop_path: x must be [B, ...], got ", x.shape());
  if (p == 0.0f) return x;
  const int64_t B = x.size(0), inner = x.numel() / B;
  const Tensor row_scale = draw_keep_scale(B, p, rng);
  Tensor out = Tensor::empty(x.shape());
  kernels::row_scale_forward(out.data(), x.value().data(), row_scale.data(), B, inner);
  return profiled_record(out, {x}, [x, row_scale, B, inner](const Tensor& dout) {
    if (x.requires_grad())
      kernels::row_scale_backward(x.grad().data(), dout.data(), row_scale.data(), B, inner);
  }, "drop_path");
}

}  // namespace vit
