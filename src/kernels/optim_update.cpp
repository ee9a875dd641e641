// Optimizer update kernels (see optim_update.hpp). Each line mirrors one torch tensor op in the
// same order, so float rounding matches torch's scalar (non-FMA) path; the branches on the
// scalars are hoisted out of the element loops.
#include "kernels/optim_update.hpp"

#include <cmath>

namespace vit::kernels {

void sgd_update(float* p, float* buf, const float* g, int64_t n, const SgdScalars& s) {
  const float wd = s.weight_decay, mu = s.momentum, damp1 = s.one_minus_dampening;
  const float neg_lr = s.neg_lr;
  const bool first = s.first, nesterov = s.nesterov;
  if (mu == 0.0f) {
    for (int64_t i = 0; i < n; ++i) {
      const float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
      p[i] = p[i] + neg_lr * d;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];  // d_p.add(param, alpha=wd)
    float b;
    if (first) {
      b = d;                                               // buf = clone(d_p)
    } else {
      b = buf[i] * mu;                                     // buf.mul_(momentum)
      b = b + damp1 * d;                                   //    .add_(d_p, alpha=1-dampening)
    }
    buf[i] = b;
    const float step = nesterov ? d + mu * b : b;        // d_p.add(buf, alpha=momentum)
    p[i] = p[i] + neg_lr * step;                           // param.add_(d_p, alpha=-lr)
  }
}

void adam_update(float* p, float* m, float* v, const float* g, int64_t n, const AdamScalars& scalars) {
  const AdamScalars s = scalars;  // a local copy: the buffers cannot alias it, loads hoist
  for (int64_t i = 0; i < n; ++i) {
    float pi = p[i];
    if (s.decay != 1.0f) pi = pi * s.decay;                       // param.mul_(1 - lr*wd)
    const float gi = s.weight_decay != 0.0f ? g[i] + s.weight_decay * pi : g[i];
    float mi = m[i] * s.beta1;                                    // exp_avg.mul_(beta1)
    mi = mi + s.one_minus_beta1 * gi;                             //   .add_(grad, alpha=1-beta1)
    float vi = v[i] * s.beta2;                                    // exp_avg_sq.mul_(beta2)
    vi = vi + s.one_minus_beta2 * gi * gi;                        //   .addcmul_(grad, grad, 1-beta2)
    const float denom = std::sqrt(vi) / s.bias_correction2_sqrt + s.eps;
    p[i] = pi + s.neg_step_size * mi / denom;                     // addcdiv_(m, denom, -step_size)
    m[i] = mi;
    v[i] = vi;
  }
}

void radam_update(float* p, float* m, float* v, const float* g, int64_t n, const RAdamScalars& scalars) {
  const RAdamScalars s = scalars;  // a local copy: the buffers cannot alias it, loads hoist
  const bool moves = s.mode != RAdamMode::MomentsOnly;
  for (int64_t i = 0; i < n; ++i) {
    float pi = p[i];
    if (moves && s.decay != 1.0f) pi = pi * s.decay;              // decoupled: param.mul_(1-lr*wd)
    const float gi = s.weight_decay != 0.0f ? g[i] + s.weight_decay * pi : g[i];
    float mi = m[i] * s.beta1;
    mi = mi + s.one_minus_beta1 * gi;
    float vi = v[i] * s.beta2;
    vi = vi + s.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    if (!moves) continue;
    const float m_hat = mi / s.bias_correction1;                  // exp_avg / bias_correction1
    if (s.mode == RAdamMode::Rectified) {
      // torch: sqrt(bc2) / t is Tensor.__rtruediv__ = t.reciprocal() * sqrt(bc2)
      const float adaptive = (1.0f / (std::sqrt(vi) + s.eps)) * s.bias_correction2_sqrt;
      const float u = m_hat * s.lr * adaptive * s.rect;           // left to right, as torch
      p[i] = pi - u;                                              // param.add_(u, alpha=-1)
    } else {
      p[i] = pi - m_hat * s.lr;
    }
  }
}

void lookahead_sync(float* slow, float* fast, int64_t n, float alpha) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = slow[i] + alpha * (fast[i] - slow[i]);
    slow[i] = s;
    fast[i] = s;
  }
}

double sum_squares(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

void scale_inplace(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace vit::kernels
