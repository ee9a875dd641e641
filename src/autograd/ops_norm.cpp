// Normalisation, softmax and loss ops: layer_norm (saves per-row mean/rstd), softmax (saves its
// output), cross_entropy (fused log-softmax, saves the row log-sum-exp). Shape checks here;
// all arithmetic in kernels/{layernorm,softmax,cross_entropy}.
#include <cmath>

#include "autograd/ops.hpp"
#include "autograd/ops_profile.hpp"
#include "kernels/cross_entropy.hpp"
#include "kernels/layernorm.hpp"
#include "kernels/softmax.hpp"

namespace vit {

namespace {
float* grad_or_null(const Var& v) { return v.requires_grad() ? v.grad().data() : nullptr; }
const float* data_or_null(const Var& v) { return v.defined() ? v.value().data() : nullptr; }
}  // namespace

Var layer_norm(const Var& x, const Var& weight, const Var& bias, float eps) {
  VIT_CHECK(x.value().dim() >= 1 && x.size(-1) > 0, "layer_norm: input shape ", x.shape(),
            " needs a non-empty last axis");
  const int64_t D = x.size(-1), R = x.numel() / D;
  VIT_CHECK(!weight.defined() || weight.shape() == Shape{D}, "layer_norm: weight shape ",
            weight.shape(), " != [", D, "] for input ", x.shape());
  VIT_CHECK(!bias.defined() || bias.shape() == Shape{D}, "layer_norm: bias shape ", bias.shape(),
            " != [", D, "] for input ", x.shape());
  VIT_CHECK(eps > 0.0f, "layer_norm: eps must be > 0, got ", eps);
  Tensor out = Tensor::empty(x.shape());
  Tensor mean = Tensor::empty({R}), rstd = Tensor::empty({R});
  kernels::layernorm_forward(out.data(), mean.data(), rstd.data(), x.value().data(),
                             data_or_null(weight), data_or_null(bias), R, D, eps);
  return profiled_record(out, {x, weight, bias}, [x, weight, bias, mean, rstd, R, D](const Tensor& dout) {
    kernels::layernorm_backward(grad_or_null(x), grad_or_null(weight), grad_or_null(bias),
                                dout.data(), x.value().data(), mean.data(), rstd.data(),
                                data_or_null(weight), R, D);
  }, "layer_norm");
}

Var softmax(const Var& x) {
  VIT_CHECK(x.value().dim() >= 1 && x.size(-1) > 0, "softmax: input shape ", x.shape(),
            " needs a non-empty last axis");
  const int64_t K = x.size(-1), R = x.numel() / K;
  Tensor y = Tensor::empty(x.shape());
  kernels::softmax_forward(y.data(), x.value().data(), R, K);
  return profiled_record(y, {x}, [x, y, R, K](const Tensor& dout) {
    if (x.requires_grad()) kernels::softmax_backward(x.grad().data(), dout.data(), y.data(), R, K);
  }, "softmax");
}

Var cross_entropy(const Var& logits, const std::vector<int32_t>& labels, float smoothing) {
  VIT_CHECK(logits.value().dim() == 2 && logits.size(0) > 0 && logits.size(1) > 0,
            "cross_entropy: logits must be [B, K] with B, K > 0, got ", logits.shape());
  const int64_t B = logits.size(0), K = logits.size(1);
  VIT_CHECK(static_cast<int64_t>(labels.size()) == B, "cross_entropy: ", labels.size(),
            " labels for logits ", logits.shape());
  for (int64_t b = 0; b < B; ++b)
    VIT_CHECK(labels[b] >= 0 && labels[b] < K, "cross_entropy: label ", labels[b], " at row ", b,
              " is outside [0, ", K, ") for logits ", logits.shape());
  VIT_CHECK(smoothing >= 0.0f && smoothing <= 1.0f, "cross_entropy: smoothing ", smoothing,
            " outside [0, 1]");
  Tensor losses = Tensor::empty({B}), lse = Tensor::empty({B});
  kernels::cross_entropy_forward(losses.data(), lse.data(), logits.value().data(), labels.data(),
                                 B, K, smoothing);
  double total = 0.0;  // rows summed in order, in double
  for (int64_t b = 0; b < B; ++b) total += losses[b];
  Tensor out = Tensor::full({1}, static_cast<float>(total / static_cast<double>(B)));
  return profiled_record(out, {logits}, [logits, labels, lse, B, K, smoothing](const Tensor& dout) {
    if (!logits.requires_grad()) return;
    // loss = mean_b loss_b, so every row gets dout / B
    const Tensor dloss = Tensor::full({B}, static_cast<float>(dout[0] / static_cast<double>(B)));
    kernels::cross_entropy_backward(logits.grad().data(), logits.value().data(), lse.data(),
                                    labels.data(), dloss.data(), B, K, smoothing);
  }, "cross_entropy");
}

}  // namespace vit
