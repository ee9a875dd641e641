// Elementwise ops (add, mul, scale, gelu, sum, mean): shape checks, the forward kernel call and
// the backward closure side by side. Broadcasting is the "suffix" rule of ops.hpp only; there is
// no general numpy broadcasting.
#include "autograd/ops.hpp"
#include "autograd/ops_profile.hpp"
#include "kernels/activation.hpp"
#include "kernels/elementwise.hpp"

namespace vit {

namespace {
// Number of leading elements b is repeated over when a [..., suffix] meets b [1, .., suffix].
int64_t broadcast_outer(const Shape& a, const Shape& b, const char* op) {
  Shape bs = b;
  while (bs.size() > 1 && bs.front() == 1) bs.erase(bs.begin());
  bool ok = bs.size() <= a.size();
  for (size_t i = 0; ok && i < bs.size(); ++i) ok = bs[bs.size() - 1 - i] == a[a.size() - 1 - i];
  VIT_CHECK(ok, op, ": shape ", b, " does not broadcast over ", a, " (must match a suffix)");
  return shape_numel(a) / shape_numel(bs);
}
float* grad_or_null(const Var& v) { return v.requires_grad() ? v.grad().data() : nullptr; }
}  // namespace

Var add(const Var& a, const Var& b) {
  const int64_t outer = broadcast_outer(a.shape(), b.shape(), "add");
  const int64_t inner = b.numel();
  Tensor out = Tensor::empty(a.shape());
  kernels::add_forward(out.data(), a.value().data(), b.value().data(), outer, inner);
  return profiled_record(out, {a, b}, [a, b, outer, inner](const Tensor& dout) {
    // Same-shape operands: dout itself becomes the first one's gradient when that has none
    // (Var::adopt_grad), else it is copied into a fresh gradient or added (a and b may be one
    // Var: then never adopted, as the second pass would add dout to itself).
    bool adopted = a.same(b);
    auto pass_through = [&dout, &adopted](const Var& v) {
      if (!adopted && v.adopt_grad(dout)) {
        adopted = true;
        return;
      }
      bool fresh = false;
      float* g = v.grad_for_write(fresh);
      kernels::accumulate(g, dout.data(), v.numel(), fresh);
    };
    if (a.requires_grad()) pass_through(a);
    if (b.requires_grad() && outer == 1) pass_through(b);
    else if (b.requires_grad()) kernels::column_sums(b.grad().data(), dout.data(), outer, inner);
  }, "add");
}

Var mul(const Var& a, const Var& b) {
  const int64_t outer = broadcast_outer(a.shape(), b.shape(), "mul");
  const int64_t inner = b.numel();
  Tensor out = Tensor::empty(a.shape());
  kernels::mul_forward(out.data(), a.value().data(), b.value().data(), outer, inner);
  return profiled_record(out, {a, b}, [a, b, outer, inner](const Tensor& dout) {
    kernels::mul_backward(grad_or_null(a), grad_or_null(b), dout.data(), a.value().data(),
                          b.value().data(), outer, inner);
  }, "mul");
}

Var scale(const Var& a, float s) {
  Tensor out = Tensor::empty(a.shape());
  kernels::scale_forward(out.data(), a.value().data(), s, a.numel());
  return profiled_record(out, {a}, [a, s](const Tensor& dout) {
    if (a.requires_grad()) kernels::scale_accumulate(a.grad().data(), dout.data(), s, a.numel());
  }, "scale");
}

Var gelu(const Var& x) {
  Tensor out = Tensor::empty(x.shape());
  kernels::gelu_forward(out.data(), x.value().data(), x.numel());
  return profiled_record(out, {x}, [x](const Tensor& dout) {
    if (x.requires_grad())
      kernels::gelu_backward(x.grad().data(), dout.data(), x.value().data(), x.numel());
  }, "gelu");
}

Var sum(const Var& x) {
  Tensor out = Tensor::full({1}, static_cast<float>(kernels::sum_forward(x.value().data(), x.numel())));
  return profiled_record(out, {x}, [x](const Tensor& dout) {
    if (x.requires_grad()) kernels::fill_accumulate(x.grad().data(), dout[0], x.numel());
  }, "sum");
}

Var mean(const Var& x) {
  VIT_CHECK(x.numel() > 0, "mean of an empty tensor, shape ", x.shape());
  const double n = static_cast<double>(x.numel());
  Tensor out = Tensor::full({1}, static_cast<float>(kernels::sum_forward(x.value().data(), x.numel()) / n));
  return profiled_record(out, {x}, [x, n](const Tensor& dout) {
    if (x.requires_grad())
      kernels::fill_accumulate(x.grad().data(), static_cast<float>(dout[0] / n), x.numel());
  }, "mean");
}

}  // namespace vit
