// Two register-tiled products for the in-cache, per-(batch, head) kernels (attention_head,
// favor), where every operand is a few KiB and a general GEMM call costs more in set-up and
// ragged edge tiles than in arithmetic:
//   scores: C [M, Np] = A [M, d] Bt [d, Np], Bt a packed (transposed) operand, Np a multiple of 8;
//   values: C [M, d] = A(r, k) B [K, d], A read through (row, k) strides (so a transposed A needs
//           no copy), d a multiple of 8; C stored, streamed or added to.
// Each output element is one fixed-order sum (k ascending). AVX2 + FMA only: callers check
// simd_avx2_fma() (and x86) and keep a GEMM path otherwise.
#pragma once
#include <cstdint>

namespace vit::kernels::detail {

// How a product's result goes to C: stored, streamed past the cache (non-temporal, 32-byte
// aligned rows: for a fresh gradient nothing reads soon, so its lines need not be fetched
// first), or added to what C holds.
enum class Write { Store, Stream, Add };

// C [M, Np] (row stride ldc) = A [M, d] (row stride lda) Bt [d, Np] (row stride Np).
void scores(float* c, int64_t ldc, const float* a, int64_t lda, int64_t M, const float* bt,
            int64_t Np, int64_t d);

// C [M, d] (row stride ldc; written as w says) = A(r, k) = a[r * a_rs + k * a_ks] times
// B [K, d] (row stride ldb).
void values(float* c, int64_t ldc, Write w, const float* a, int64_t a_rs, int64_t a_ks, int64_t M,
            const float* b, int64_t ldb, int64_t K, int64_t d);

}  // namespace vit::kernels::detail
