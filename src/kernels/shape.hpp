// Shape kernels: copies between layouts (contiguous tensors only, no strided views). Each has
// a backward that scatters back with +=. Every output element has exactly one source, so the
// forward loops are parallel over output rows; the only sums (cls-token gradient over the batch,
// mean over tokens) walk their summed axis in order inside one thread.
#pragma once
#include <cstdint>

namespace vit::kernels {

// out [A, C, B, E] = x [A, B, C, E] with axes 1 and 2 swapped
void permute_0213_forward(float* out, const float* x, int64_t A, int64_t B, int64_t C, int64_t E);
// dx [A, B, C, E] += dout [A, C, B, E] with axes 1 and 2 swapped back
void permute_0213_backward(float* dx, const float* dout, int64_t A, int64_t B, int64_t C, int64_t E);

// images [B, C, H, W] -> patches [B, (H/P)*(W/P), C*P*P]: patches row-major over the grid,
// inside a patch (channel, row, col), i.e. the flattening of a Conv2d weight [D, C, P, P].
// H and W must be multiples of P (checked by the op).
void patchify_forward(float* patches, const float* images, int64_t B, int64_t C, int64_t H,
                      int64_t W, int64_t P);
// dimages [B, C, H, W] += the patches gradient scattered back
void patchify_backward(float* dimages, const float* dpatches, int64_t B, int64_t C, int64_t H,
                       int64_t W, int64_t P);

// out [B, N+1, D]: row 0 = cls [D], rows 1.. = x [B, N, D]
void concat_cls_forward(float* out, const float* cls, const float* x, int64_t B, int64_t N, int64_t D);
// dcls [D] += sum_b dout[b, 0, :] (may be null); dx [B, N, D] += dout[:, 1:, :] (may be null)
void concat_cls_backward(float* dcls, float* dx, const float* dout, int64_t B, int64_t N, int64_t D);

// out [B, D] = x [B, N, D][:, index, :]
void select_token_forward(float* out, const float* x, int64_t B, int64_t N, int64_t D, int64_t index);
// dx[:, index, :] += dout [B, D]
void select_token_backward(float* dx, const float* dout, int64_t B, int64_t N, int64_t D, int64_t index);

// out [B, D] = mean over n of x [B, N, D] (tokens summed in order)
void mean_tokens_forward(float* out, const float* x, int64_t B, int64_t N, int64_t D);
// dx [B, N, D] += dout [B, D] / N
void mean_tokens_backward(float* dx, const float* dout, int64_t B, int64_t N, int64_t D);

}  // namespace vit::kernels
