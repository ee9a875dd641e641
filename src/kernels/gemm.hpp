// Single-precision GEMM: C[M, N] = alpha * op(A) op(B) + beta * C, row-major, op = identity or
// transpose per operand, explicit leading dimensions, plus a strided-batch form and operands
// applied as the tiles are stored (an element-wise scale, a per-column bias, a residual).
// Cache-blocked with packed panels (thin operands read in place) and a 6x16 register tile; an
// AVX2/FMA micro-kernel chosen at run time, a portable one otherwise. Not a full BLAS: float only,
// row-major only, no complex, no negative strides.
//
// Determinism: every C element is computed by one thread with k in a fixed order (K is blocked,
// and for long K with a small C split into 4 chunks summed in order, by sizes that depend only
// on the shape), so results are bit-identical for any thread count.
#pragma once
#include <cstdint>

namespace vit::kernels {

// C [M, N] (ldc) = alpha * op(A) op(B) + beta * C.
// op(A) is [M, K]: A is [M, K] (lda) or, when trans_a, [K, M] (lda).
// op(B) is [K, N]: B is [K, N] (ldb) or, when trans_b, [N, K] (ldb).
// beta == 0 never reads C (so C may hold garbage or NaN).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// gemm plus a per-column bias and a residual: C = alpha * op(A) op(B) + beta * C + bias[j]
// + R[i, j] (bias [N] or null, R [M, N] with row stride ldr or null), added in that order as the
// tile is stored (the linear layers' forward; R: a pre-LN block's residual stream).
void gemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
               int64_t ldc, const float* bias, const float* residual = nullptr, int64_t ldr = 0);

// gemm with the result multiplied element by element by S [M, N] (row stride lds) as the tiles are
// stored: C = (alpha * op(A) op(B) + beta * C) * S[i, j] (a GELU's backward, dh = (dy W) *
// gelu'(h), with no dy in memory in between).
void gemm_scaled(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc, const float* S, int64_t lds);

// For b in [0, batch): gemm on A + b * stride_a, B + b * stride_b, C + b * stride_c.
// Many small products run one per thread; few large ones are each split over the threads.
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                  int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c,
                  int64_t batch);

// "avx2-fma" or "portable": the micro-kernel the next call will use. The AVX2 path is taken
// when the CPU has AVX2 and FMA and the environment variable VIT_SIMD is not "portable"
// (read on every top-level call, so tests can compare both paths in one process).
const char* gemm_simd_path();


namespace detail {
// Register tile of both micro-kernels.
constexpr int kMR = 6;
constexpr int kNR = 16;
// One register tile: its operands A(r, p) = a[r * a_rs + p * a_cs] for r < kMR and
// B(p, c) = b[p * b_ks + c] for c < kNR (a packed A panel is (a_rs, a_cs) = (1, kMR), b_ks = kNR;
// an unpacked row-major A is (lda, 1), a transposed one (1, lda); an unpacked B is b_ks = ldb),
// and the window of the 6 x 16 result that is stored: rows [r0, r1), columns [c0, c1) (edges).
struct Tile {
  const float* a;
  int64_t a_rs, a_cs;
  const float* b;
  int64_t b_ks;
  int r0 = 0, r1 = kMR, c0 = 0, c1 = kNR;
  const float* mul = nullptr;   // when set: * mul[r * ldm + j] at (r, j), after alpha, beta
  int64_t ldm = 0;
  const float* bias = nullptr;  // when set: + bias[j] for the tile's column j, after mul
  const float* res = nullptr;   // when set: + res[r * ldr + j] for the tile's (r, j), after bias
  int64_t ldr = 0;
};
// c[r, j] (ldc) = (alpha * sum_{p < kc} A(r, p) B(p, j) + beta * c[r, j]) (* mul[r, j]) (+ bias[j])
// (+ res[r, j]) for (r, j) in the window;
// nothing outside it is read or written, and beta == 0 does not read c. Every element is
// computed the same way whatever the layout or window, so packed, unpacked and edge tiles agree
// bit for bit.
using MicroKernel = void (*)(int64_t kc, const Tile& t, float* c, int64_t ldc, float alpha,
                             float beta);
void micro_kernel_portable(int64_t kc, const Tile& t, float* c, int64_t ldc, float alpha,
                           float beta);
void micro_kernel_avx2(int64_t kc, const Tile& t, float* c, int64_t ldc, float alpha, float beta);
bool cpu_has_avx2_fma();
// dst[p * kNR + c] = src[c * ld + p] for c < kNR, p < kc (a whole panel of a transposed B).
void pack_b_trans_avx2(float* dst, const float* src, int64_t ld, int64_t kc);
// Whether gemm packs its operands into panels: Auto (by shape), or forced either way for tests
// (Never still packs a transposed B and the partial edge panels). Results are the same bits.
enum class Packing { Auto, Always, Never };
void set_packing(Packing p);
}  // namespace detail

}  // namespace vit::kernels
