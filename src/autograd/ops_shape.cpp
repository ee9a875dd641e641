// Shape ops: reshape (shares storage), permute_0213, patchify, concat_cls, select_token and
// mean_tokens (copies through kernels/shape). Tensors stay contiguous; there are no views.
#include "autograd/ops.hpp"
#include "autograd/ops_profile.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/shape.hpp"

namespace vit {

Var reshape(const Var& x, const Shape& shape) {
  // One axis may be -1 (inferred from the element count).
  Shape target = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      VIT_CHECK(infer < 0, "reshape: more than one -1 in ", shape);
      infer = static_cast<int64_t>(i);
    } else {
      VIT_CHECK(target[i] >= 0, "reshape: negative size in ", shape);
      known *= target[i];
    }
  }
  if (infer >= 0) {
    VIT_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot infer -1 in ", shape,
              " for input ", x.shape());
    target[static_cast<size_t>(infer)] = x.numel() / known;
  }
  VIT_CHECK(shape_numel(target) == x.numel(), "reshape: ", x.shape(), " has ", x.numel(),
            " elements, target ", shape, " has ", shape_numel(target));
  // Same storage as x: the output is not written in place by any op, so sharing is safe.
  Tensor out = x.value().reshape(target);
  return profiled_record(out, {x}, [x](const Tensor& dout) {
    if (x.requires_grad()) kernels::scale_accumulate(x.grad().data(), dout.data(), 1.0f, x.numel());
  }, "reshape");
}

Var permute_0213(const Var& x) {
  VIT_CHECK(x.value().dim() == 4, "permute_0213: input must be 4-D, got ", x.shape());
  const int64_t A = x.size(0), B = x.size(1), C = x.size(2), E = x.size(3);
  Tensor out = Tensor::empty({A, C, B, E});
  kernels::permute_0213_forward(out.data(), x.value().data(), A, B, C, E);
  return profiled_record(out, {x}, [x, A, B, C, E](const Tensor& dout) {
    if (x.requires_grad()) kernels::permute_0213_backward(x.grad().data(), dout.data(), A, B, C, E);
  }, "permute_0213");
}

Var patchify(const Var& images, int64_t patch) {
  VIT_CHECK(images.value().dim() == 4, "patchify: images must be [B, C, H, W], got ", images.shape());
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  VIT_CHECK(patch > 0 && H % patch == 0 && W % patch == 0, "patchify: image size ", H, "x", W,
            " is not a multiple of the patch size ", patch);
  const int64_t L = (H / patch) * (W / patch);
  Tensor out = Tensor::empty({B, L, C * patch * patch});
  kernels::patchify_forward(out.data(), images.value().data(), B, C, H, W, patch);
  return profiled_record(out, {images}, [images, B, C, H, W, patch](const Tensor& dout) {
    if (images.requires_grad())
      kernels::patchify_backward(images.grad().data(), dout.data(), B, C, H, W, patch);
  }, "patchify");
}

Var concat_cls(const Var& cls, const Var& x) {
  VIT_CHECK(x.value().dim() == 3, "concat_cls: x must be [B, N, D], got ", x.shape());
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  VIT_CHECK(cls.shape() == (Shape{1, 1, D}), "concat_cls: cls shape ", cls.shape(), " != [1, 1, ",
            D, "] for x ", x.shape());
  Tensor out = Tensor::empty({B, N + 1, D});
  kernels::concat_cls_forward(out.data(), cls.value().data(), x.value().data(), B, N, D);
  return profiled_record(out, {cls, x}, [cls, x, B, N, D](const Tensor& dout) {
    kernels::concat_cls_backward(cls.requires_grad() ? cls.grad().data() : nullptr,
                                 x.requires_grad() ? x.grad().data() : nullptr, dout.data(), B, N, D);
  }, "concat_cls");
}

Var select_token(const Var& x, int64_t index) {
  VIT_CHECK(x.value().dim() == 3, "select_token: x must be [B, N, D], got ", x.shape());
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  VIT_CHECK(index >= 0 && index < N, "select_token: index ", index, " outside [0, ", N,
            ") for x ", x.shape());
  Tensor out = Tensor::empty({B, D});
  kernels::select_token_forward(out.data(), x.value().data(), B, N, D, index);
  return profiled_record(out, {x}, [x, B, N, D, index](const Tensor& dout) {
    if (x.requires_grad()) kernels::select_token_backward(x.grad().data(), dout.data(), B, N, D, index);
  }, "select_token");
}

Var mean_tokens(const Var& x) {
  VIT_CHECK(x.value().dim() == 3 && x.size(1) > 0, "mean_tokens: x must be [B, N, D] with N > 0, got ",
            x.shape());
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  Tensor out = Tensor::empty({B, D});
  kernels::mean_tokens_forward(out.data(), x.value().data(), B, N, D);
  return profiled_record(out, {x}, [x, B, N, D](const Tensor& dout) {
    if (x.requires_grad()) kernels::mean_tokens_backward(x.grad().data(), dout.data(), B, N, D);
  }, "mean_tokens");
}

}  // namespace vit
