// Elementwise ops: forward kernel call and backward closure side by side.
#include "autograd/ops.hpp"
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
}  // namespace

Var add(const Var& a, const Var& b) {
  const int64_t outer = broadcast_outer(a.shape(), b.shape(), "add");
  const int64_t inner = b.numel();
  Tensor out = Tensor::empty(a.shape());
  kernels::add_forward(out.data(), a.value().data(), b.value().data(), outer, inner);
  return record(out, {a, b}, [a, b, outer, inner](const Tensor& dout) {
    kernels::add_backward(a.requires_grad() ? a.grad().data() : nullptr,
                          b.requires_grad() ? b.grad().data() : nullptr, dout.data(), outer, inner);
  }, "add");
}

Var sum(const Var& x) {
  Tensor out = Tensor::full({1}, static_cast<float>(kernels::sum_forward(x.value().data(), x.numel())));
  return record(out, {x}, [x](const Tensor& dout) {
    if (!x.requires_grad()) return;
    Tensor& dx = x.grad();
    const float g = dout[0];
    for (int64_t i = 0; i < dx.numel(); ++i) dx[i] += g;
  }, "sum");
}

}  // namespace vit
