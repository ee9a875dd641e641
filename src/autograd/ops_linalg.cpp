// Linear-algebra ops (matmul, bmm, linear, linear_gelu, linear_residual): shape checks, the
// forward GEMM and the backward closure side by side. All products go through kernels/gemm; bias
// gradients use the deterministic column sums of kernels/elementwise. No broadcasting beyond what
// ops.hpp states.
#include "autograd/ops.hpp"
#include "autograd/ops_profile.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/activation.hpp"
#include "kernels/gemm.hpp"

namespace vit {

namespace {

// Rows of x [..., in] when flattened to [rows, in].
int64_t leading_rows(const Shape& s) { return shape_numel(s) / s.back(); }

// Shape checks shared by linear and linear_gelu; returns rows.
int64_t check_linear(const Var& x, const Var& w, const Var& b, const char* op) {
  VIT_CHECK(x.defined() && w.defined(), op, ": x and w must be defined");
  VIT_CHECK(w.value().dim() == 2, op, ": w must be [out, in], got ", w.shape());
  VIT_CHECK(x.value().dim() >= 1 && x.shape().back() == w.size(1), op, ": x ", x.shape(),
            " does not end in w's in-features ", w.size(1), " (w ", w.shape(), ")");
  if (b.defined())
    VIT_CHECK(b.value().dim() == 1 && b.size(0) == w.size(0), op, ": bias ", b.shape(),
              " must be [", w.size(0), "] for w ", w.shape());
  return leading_rows(x.shape());
}

// Backward of y [rows, out] = x [rows, in] w^T + b given dy: dx += dy w, dw += dy^T x,
// db += column sums of dy (unless the caller has done that: bias_done).
void linear_backward(const Var& x, const Var& w, const Var& b, const float* dy, int64_t rows,
                     bool bias_done = false) {
  const int64_t in = w.size(1), out = w.size(0);
  if (x.requires_grad()) {
    bool fresh = false;
    float* dx = x.grad_for_write(fresh);
    kernels::gemm(false, false, rows, in, out, 1.0f, dy, out, w.value().data(), in,
                  fresh ? 0.0f : 1.0f, dx, in);
  }
  if (w.requires_grad())
    kernels::gemm(true, false, out, in, rows, 1.0f, dy, out, x.value().data(), in, 1.0f,
                  w.grad().data(), in);
  if (b.defined() && b.requires_grad() && !bias_done)
    kernels::column_sums(b.grad().data(), dy, rows, out);
}

// The gradient of a residual added in a GEMM epilogue is dz itself: adopted when the residual has
// none, else added. dz's buffer may be handed on (and later accumulated into), so this comes after
// every product that reads dz.
void residual_backward(const Var& residual, const Tensor& dz) {
  if (!residual.requires_grad() || residual.adopt_grad(dz)) return;
  bool fresh = false;
  float* g = residual.grad_for_write(fresh);
  kernels::accumulate(g, dz.data(), residual.numel(), fresh);
}

Shape linear_out_shape(const Shape& x, int64_t out) {
  Shape s = x;
  s.back() = out;
  return s;
}

std::vector<Var> linear_inputs(const Var& x, const Var& w, const Var& b) {
  std::vector<Var> in{x, w};
  if (b.defined()) in.push_back(b);
  return in;
}

}  // namespace

Var matmul(const Var& a, const Var& b) {
  VIT_CHECK(a.value().dim() == 2 && b.value().dim() == 2 && a.size(1) == b.size(0),
            "matmul: need a [M, K] and b [K, N], got ", a.shape(), " and ", b.shape());
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  Tensor out = Tensor::empty({M, N});
  kernels::gemm(false, false, M, N, K, 1.0f, a.value().data(), K, b.value().data(), N, 0.0f,
                out.data(), N);
  return profiled_record(out, {a, b}, [a, b, M, N, K](const Tensor& dout) {
    // out = a b: da += dout b^T, db += a^T dout
    if (a.requires_grad())
      kernels::gemm(false, true, M, K, N, 1.0f, dout.data(), N, b.value().data(), N, 1.0f,
                    a.grad().data(), K);
    if (b.requires_grad())
      kernels::gemm(true, false, K, N, M, 1.0f, a.value().data(), K, dout.data(), N, 1.0f,
                    b.grad().data(), N);
  }, "matmul");
}

Var bmm(const Var& a, const Var& b, bool trans_a, bool trans_b) {
  VIT_CHECK(a.value().dim() == 3 && b.value().dim() == 3 && a.size(0) == b.size(0),
            "bmm: need a [B, ., .] and b [B, ., .] with the same B, got ", a.shape(), " and ",
            b.shape());
  const int64_t B = a.size(0);
  const int64_t M = trans_a ? a.size(2) : a.size(1), K = trans_a ? a.size(1) : a.size(2);
  const int64_t Kb = trans_b ? b.size(2) : b.size(1), N = trans_b ? b.size(1) : b.size(2);
  VIT_CHECK(K == Kb, "bmm: inner sizes differ: a ", a.shape(), (trans_a ? " (transposed)" : ""),
            " and b ", b.shape(), (trans_b ? " (transposed)" : ""));
  const int64_t lda = a.size(2), ldb = b.size(2);
  const int64_t sa = a.size(1) * a.size(2), sb = b.size(1) * b.size(2);
  Tensor out = Tensor::empty({B, M, N});
  kernels::gemm_batched(trans_a, trans_b, M, N, K, 1.0f, a.value().data(), lda, sa,
                        b.value().data(), ldb, sb, 0.0f, out.data(), N, M * N, B);
  return profiled_record(out, {a, b}, [=](const Tensor& dout) {
    const float* g = dout.data();
    const float* av = a.value().data();
    const float* bv = b.value().data();
    // With X = op(a), Y = op(b), out = X Y: dX = dout Y^T and dY = X^T dout; when an operand
    // is stored transposed its gradient is the transpose, which swaps the product's order.
    if (a.requires_grad()) {
      float* da = a.grad().data();
      if (!trans_a)  // da [M, K] = dout [M, N] op(b)^T
        kernels::gemm_batched(false, !trans_b, M, K, N, 1.0f, g, N, M * N, bv, ldb, sb, 1.0f, da,
                              lda, sa, B);
      else  // da [K, M] = op(b) [K, N] dout^T
        kernels::gemm_batched(trans_b, true, K, M, N, 1.0f, bv, ldb, sb, g, N, M * N, 1.0f, da,
                              lda, sa, B);
    }
    if (b.requires_grad()) {
      float* db = b.grad().data();
      if (!trans_b)  // db [K, N] = op(a)^T dout
        kernels::gemm_batched(!trans_a, false, K, N, M, 1.0f, av, lda, sa, g, N, M * N, 1.0f, db,
                              ldb, sb, B);
      else  // db [N, K] = dout^T op(a)
        kernels::gemm_batched(true, trans_a, N, K, M, 1.0f, g, N, M * N, av, lda, sa, 1.0f, db,
                              ldb, sb, B);
    }
  }, "bmm");
}

Var linear(const Var& x, const Var& w, const Var& b) {
  const int64_t rows = check_linear(x, w, b, "linear");
  const int64_t in = w.size(1), out = w.size(0);
  Tensor y = Tensor::empty(linear_out_shape(x.shape(), out));
  // y [rows, out] = x [rows, in] w^T (w stored [out, in]) + b
  kernels::gemm_bias(false, true, rows, out, in, 1.0f, x.value().data(), in, w.value().data(), in,
                     0.0f, y.data(), out, b.defined() ? b.value().data() : nullptr);
  return profiled_record(y, linear_inputs(x, w, b), [x, w, b, rows](const Tensor& dy) {
    linear_backward(x, w, b, dy.data(), rows);
  }, "linear");
}

Var linear_residual(const Var& x, const Var& w, const Var& b, const Var& residual) {
  const int64_t rows = check_linear(x, w, b, "linear_residual");
  const int64_t in = w.size(1), out = w.size(0);
  const Shape shape = linear_out_shape(x.shape(), out);
  VIT_CHECK(residual.defined() && residual.shape() == shape, "linear_residual: residual ",
            residual.defined() ? residual.shape() : Shape{}, " must match the output ", shape);
  Tensor y = Tensor::empty(shape);
  kernels::gemm_bias(false, true, rows, out, in, 1.0f, x.value().data(), in, w.value().data(), in,
                     0.0f, y.data(), out, b.defined() ? b.value().data() : nullptr,
                     residual.value().data(), out);
  std::vector<Var> inputs = linear_inputs(x, w, b);
  inputs.push_back(residual);
  return profiled_record(y, inputs, [x, w, b, residual, rows](const Tensor& dy) {
    linear_backward(x, w, b, dy.data(), rows);
    residual_backward(residual, dy);
  }, "linear_residual");
}

namespace {

// linear_gelu's forward: y = gelu(h), h = x w^T + b (bias added as the GEMM stores its tiles), in
// a vectorised pass (the one GELU definition, kernels/activation.hpp). For training gelu'(h) is
// kept too, from the same erf, so that backward is a product; h itself is not kept. Without
// training y is computed in place.
struct GeluForward {
  Tensor y, slope;
};
GeluForward gelu_layer_forward(const Var& x, const Var& w, const Var& b, int64_t rows,
                               bool training) {
  const int64_t in = w.size(1), out = w.size(0);
  const Shape shape = linear_out_shape(x.shape(), out);
  GeluForward f{Tensor::empty(shape), training ? Tensor::empty(shape) : Tensor()};
  Tensor h = training ? Tensor::empty(shape) : f.y;
  kernels::gemm_bias(false, true, rows, out, in, 1.0f, x.value().data(), in, w.value().data(), in,
                     0.0f, h.data(), out, b.defined() ? b.value().data() : nullptr);
  if (training) kernels::gelu_forward_with_slope(f.y.data(), f.slope.data(), h.data(), h.numel());
  else kernels::gelu_forward(f.y.data(), f.y.data(), f.y.numel());
  return f;
}

bool any_requires_grad(const std::vector<Var>& vars) {
  for (const Var& v : vars)
    if (v.defined() && v.requires_grad()) return true;
  return false;
}

}  // namespace

Var linear_gelu(const Var& x, const Var& w, const Var& b) {
  const int64_t rows = check_linear(x, w, b, "linear_gelu");
  std::vector<Var> inputs = linear_inputs(x, w, b);
  const bool training = grad_enabled() && any_requires_grad(inputs);
  const GeluForward f = gelu_layer_forward(x, w, b, rows, training);
  return profiled_record(f.y, inputs, [x, w, b, rows, slope = f.slope](const Tensor& dy) {
    // y = gelu(h): dh = dy * gelu'(h) (the bias gradient summed as dh is written), then the
    // linear backward with dh.
    Tensor dh = Tensor::empty(slope.shape());
    const bool bias = b.defined() && b.requires_grad();
    if (bias)
      kernels::gelu_backward_saved_bias(dh.data(), b.grad().data(), dy.data(), slope.data(), rows,
                                        w.size(0));
    else kernels::gelu_backward_saved(dh.data(), dy.data(), slope.data(), slope.numel());
    linear_backward(x, w, b, dh.data(), rows, bias);
  }, "linear_gelu");
}

Var mlp_residual(const Var& x, const Var& w1, const Var& b1, const Var& w2, const Var& b2,
                 const Var& residual) {
  const int64_t rows = check_linear(x, w1, b1, "mlp_residual");
  const int64_t hidden = w1.size(0);
  VIT_CHECK(w2.defined() && w2.value().dim() == 2 && w2.size(1) == hidden, "mlp_residual: w2 ",
            w2.defined() ? w2.shape() : Shape{}, " must be [out, ", hidden, "] for w1 ",
            w1.shape());
  const int64_t out = w2.size(0);
  if (b2.defined())
    VIT_CHECK(b2.value().dim() == 1 && b2.size(0) == out, "mlp_residual: b2 ", b2.shape(),
              " must be [", out, "] for w2 ", w2.shape());
  const Shape shape = linear_out_shape(x.shape(), out);
  VIT_CHECK(residual.defined() && residual.shape() == shape, "mlp_residual: residual ",
            residual.defined() ? residual.shape() : Shape{}, " must match the output ", shape);
  std::vector<Var> inputs = linear_inputs(x, w1, b1);
  inputs.push_back(w2);
  if (b2.defined()) inputs.push_back(b2);
  inputs.push_back(residual);
  const bool training = grad_enabled() && any_requires_grad(inputs);
  const GeluForward f = gelu_layer_forward(x, w1, b1, rows, training);
  Tensor z = Tensor::empty(shape);
  kernels::gemm_bias(false, true, rows, out, hidden, 1.0f, f.y.data(), hidden, w2.value().data(),
                     hidden, 0.0f, z.data(), out, b2.defined() ? b2.value().data() : nullptr,
                     residual.value().data(), out);
  return profiled_record(z, inputs, [=](const Tensor& dz) {
    // z = residual + y w2^T + b2, y = gelu(h), h = x w1^T + b1: the gradients of
    // linear_residual(linear_gelu(x, w1, b1), w2, b2, residual) in the same order (so the same
    // bits, also when x is the residual), except that dh = (dz w2) * gelu'(h) is one GEMM that
    // multiplies by the slope as it stores its tiles: no dy in memory and no pass over it.
    const float* g = dz.data();
    Tensor dh;
    if (x.requires_grad() || w1.requires_grad() || (b1.defined() && b1.requires_grad())) {
      dh = Tensor::empty(f.slope.shape());
      kernels::gemm_scaled(false, false, rows, hidden, out, 1.0f, g, out, w2.value().data(), hidden,
                           0.0f, dh.data(), hidden, f.slope.data(), hidden);
    }
    if (w2.requires_grad())
      kernels::gemm(true, false, out, hidden, rows, 1.0f, g, out, f.y.data(), hidden, 1.0f,
                    w2.grad().data(), hidden);
    if (b2.defined() && b2.requires_grad()) kernels::column_sums(b2.grad().data(), g, rows, out);
    residual_backward(residual, dz);  // may hand dz's buffer on: not read after this
    if (dh.defined()) linear_backward(x, w1, b1, dh.data(), rows);
  }, "mlp_residual");
}

}  // namespace vit
