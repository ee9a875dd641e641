// Fused optimizer update kernels: pure functions over one contiguous range of a parameter
// (p), its gradient (g) and its state buffers, all of length n. Per-step scalars (bias
// corrections, learning rate) are prepared by the caller in double and passed as float, the
// way torch 1.13 casts Python scalars. These kernels are serial; the optimizers run them in
// parallel over a fixed list of (parameter, element range) chunks. No allocation, no throws.
#pragma once
#include <cstdint>

namespace vit::kernels {

// torch.optim.SGD (_single_tensor_sgd), per element:
//   d = g + wd * p;  buf = first ? d : buf * mu + (1 - dampening) * d;
//   d = nesterov ? d + mu * buf : buf;  p = p + (-lr) * d.      (momentum == 0: no buf)
struct SgdScalars {
  float weight_decay = 0, momentum = 0, one_minus_dampening = 1, neg_lr = 0;
  bool nesterov = false;
  bool first = false;  // the first step: buf = d (torch clones d_p)
};
void sgd_update(float* p, float* buf, const float* g, int64_t n, const SgdScalars& s);

// torch.optim.Adam / AdamW (_single_tensor_adam{,w}), per element:
//   p = p * decay;  (AdamW: decay = 1 - lr * wd; Adam: 1)
//   g' = g + wd * p;  (Adam: coupled L2; AdamW: wd = 0)
//   m = m * b1 + (1 - b1) * g';  v = v * b2 + (1 - b2) * g' * g';
//   denom = sqrt(v) / sqrt(1 - b2^t) + eps;  p = p + (-lr / (1 - b1^t)) * m / denom.
struct AdamScalars {
  float decay = 1, weight_decay = 0;
  float beta1 = 0, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0;
  float bias_correction2_sqrt = 1, eps = 0, neg_step_size = 0;
};
void adam_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamScalars& s);

// torch.optim.RAdam (_single_tensor_radam, 1.13; decoupled decay as in torch 2.0), per element:
//   p = p * decay (decoupled);  g' = g + wd * p (coupled);  moments as Adam;  m_hat = m / bc1;
//   Rectified: p = p - ((m_hat * lr) * ((1 / (sqrt(v) + eps)) * sqrt(bc2))) * r_t
//   Momentum:  p = p - m_hat * lr          (torch's un-rectified step)
//   MomentsOnly: moments updated, p untouched (the `skip` policy; decay not applied either)
enum class RAdamMode { Rectified, Momentum, MomentsOnly };
struct RAdamScalars {
  RAdamMode mode = RAdamMode::Rectified;
  float decay = 1, weight_decay = 0;
  float beta1 = 0, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0;
  float bias_correction1 = 1, lr = 0, bias_correction2_sqrt = 1, eps = 0, rect = 1;
};
void radam_update(float* p, float* m, float* v, const float* g, int64_t n, const RAdamScalars& s);

// Lookahead sync: slow = slow + alpha * (fast - slow); fast = slow.
void lookahead_sync(float* slow, float* fast, int64_t n, float alpha);

// sum_i x[i]^2 accumulated in double, in index order (the caller fixes the chunking).
double sum_squares(const float* x, int64_t n);
// x *= s
void scale_inplace(float* x, int64_t n, float s);

}  // namespace vit::kernels
