// FAVOR+ forward/backward per (batch, head), and the orthogonal random-feature drawer.
// Feature rows are kept as "pre-activations" p [F]: softmax map p = exp(w.x' - |x'|^2/2 - stab)
// / sqrt(F) (then phi = p + eps and dphi/dz = p), relu map p = w.x' (then phi = relu(p) + eps and
// dphi/dz = [p > 0]). Forward and backward compute p with the same code, so the same bits.
// Per (b, h) the rows go in blocks (block_rows); every product of a block (projections X W^T,
// phi(K)^T V, phi(Q) kv and their gradients) is one register-tiled product of
// kernels/head_products when d and F are multiples of 8 on an AVX2 + FMA CPU, else one GEMM call;
// the rest are row passes, built for baseline x86-64 and for AVX2 + FMA (kernels/simd.hpp).
#include "kernels/favor.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.hpp"
#include "kernels/qkv_layout.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/fast_math.hpp"
#include "kernels/gemm.hpp"
#include "kernels/head_products.hpp"
#include "kernels/simd.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include "kernels/avx2.hpp"
#define VIT_FAVOR_X86 1
#endif

namespace vit {

Tensor draw_favor_projection(int64_t features, int64_t d, Rng& rng) {
  VIT_CHECK(features > 0 && d > 0, "draw_favor_projection: features ", features, " and d ", d,
            " must be positive");
  Tensor w = Tensor::empty({features, d});
  std::vector<double> g(static_cast<size_t>(d * d));
  const int64_t blocks = (features + d - 1) / d;
  for (int64_t blk = 0; blk < blocks; ++blk) {
    for (double& x : g) x = rng.normal();
    // Modified Gram-Schmidt on the rows: row i becomes orthonormal to rows 0..i-1. (The rows of a
    // Gaussian matrix are almost surely independent; a near-zero norm would mean a broken Rng.)
    for (int64_t i = 0; i < d; ++i) {
      double* gi = g.data() + i * d;
      for (int64_t j = 0; j < i; ++j) {
        const double* gj = g.data() + j * d;
        double dot = 0.0;
        for (int64_t c = 0; c < d; ++c) dot += gi[c] * gj[c];
        for (int64_t c = 0; c < d; ++c) gi[c] -= dot * gj[c];
      }
      double norm = 0.0;
      for (int64_t c = 0; c < d; ++c) norm += gi[c] * gi[c];
      norm = std::sqrt(norm);
      VIT_ASSERT(norm > 1e-12);
      for (int64_t c = 0; c < d; ++c) gi[c] /= norm;
    }
    const int64_t rows = std::min(d, features - blk * d);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t c = 0; c < d; ++c) w[(blk * d + i) * d + c] = static_cast<float>(g[i * d + c]);
  }
  // chi_d row norms from independent Gaussian vectors ("ortho_scaling 0").
  std::vector<double> norms(static_cast<size_t>(features));
  for (int64_t f = 0; f < features; ++f) {
    double s = 0.0;
    for (int64_t c = 0; c < d; ++c) {
      const double x = rng.normal();
      s += x * x;
    }
    norms[f] = std::sqrt(s);
  }
  for (int64_t f = 0; f < features; ++f)
    for (int64_t c = 0; c < d; ++c)
      w[f * d + c] = static_cast<float>(static_cast<double>(w[f * d + c]) * norms[f]);
  return w;
}

int64_t favor_default_features(int64_t d) {
  if (d <= 1) return 1;
  return std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(d) *
                                                               std::log(static_cast<double>(d)))));
}

namespace kernels {

namespace {

struct FeatureSetup {
  const float* w;   // W [F, d]
  const float* wt;  // xscale W^T [d, F], for the head products (null: GEMM calls)
  int64_t d, F;
  float xscale;      // d^-1/4
  float inv_sqrt_f;  // 1/sqrt(F)
  float eps;
  bool softmax;
};

// p[f] = exp((p[f] - h) - stab) * c, built for baseline x86-64 and AVX2 + FMA (kernels/simd.hpp).
VIT_ALWAYS_INLINE void exp_features_loop_body(float* __restrict p, int64_t F, float h, float stab,
                                         float c) {
  for (int64_t f = 0; f < F; ++f) p[f] = fast_exp((p[f] - h) - stab) * c;
}
VIT_SIMD_VARIANTS(void, exp_features_loop, (float* p, int64_t F, float h, float stab, float c),
                  (p, F, h, stab, c))

#ifdef VIT_FAVOR_X86
// The loop above is latency-bound (one exp is a ~15-deep chain; see avx2::exp_interleaved):
// four vectors at a time, same bits. W1 Performer: the feature exps were 13% of the step.
VIT_AVX2_FMA void exp_features_avx2x4(float* p, int64_t F, float h, float stab, float c) {
  const __m256 vh = _mm256_set1_ps(h), vs = _mm256_set1_ps(stab), vc = _mm256_set1_ps(c);
  int64_t f = 0;
  for (; f + 32 <= F; f += 32) {
    __m256 x[4];
    for (int u = 0; u < 4; ++u) x[u] = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(p + f + 8 * u), vh), vs);
    avx2::exp_interleaved<4>(x);
    for (int u = 0; u < 4; ++u) _mm256_storeu_ps(p + f + 8 * u, _mm256_mul_ps(x[u], vc));
  }
  exp_features_loop_avx2(p + f, F - f, h, stab, c);
}
#endif

void exp_features(float* p, int64_t F, float h, float stab, float c) {
#ifdef VIT_FAVOR_X86
  if (simd_avx2_fma()) return exp_features_avx2x4(p, F, h, stab, c);
#endif
  exp_features_loop(p, F, h, stab, c);
}

// Rows per block: a few [R, F] arrays per block (pre-activations, phi, gradients), ~32 KiB each
// (R = 120 at F = 64; measured: 24-row blocks were ~4% slower, 252-row ones no faster); R a
// multiple of 12, so the head tiles (4 and 6 rows) have no ragged rows.
int64_t block_rows(int64_t F) { return std::max<int64_t>(12, 8192 / F / 12 * 12); }

// u [M, F] = x' W^T for M rows of x (row stride ld). Every element is one fixed-order sum over d,
// whatever M: a block's rows get the same bits in forward and backward.
VIT_ALWAYS_INLINE void project(float* u, const float* x, int64_t ld, int64_t M,
                               const FeatureSetup& fs) {
  if (fs.wt) detail::scores(u, fs.F, x, ld, M, fs.wt, fs.F, fs.d);
  else gemm(false, true, M, fs.F, fs.d, fs.xscale, x, ld, fs.w, fs.d, 0.0f, u, fs.F);
}

// Softmax map: u [M, F] -> p = exp(u - |x'|^2/2 - stab) / sqrt(F) in place, stab the row's own max
// of u (query rows) or key_stab (key rows: one per (b, h), see favor_forward). The stabilisers
// cancel in the ratio out = phi(Q) kv / phi(Q) ksum and are not differentiated. Relu map: p = u.
VIT_ALWAYS_INLINE void exp_rows(float* u, const float* x, int64_t ld, int64_t M, bool query,
                                float key_stab, const FeatureSetup& fs) {
  if (!fs.softmax) return;
  const int64_t d = fs.d, F = fs.F;
  for (int64_t n = 0; n < M; ++n) {
    const float* xn = x + n * ld;
    const float h = 0.5f * lane_sum(d, [&](int64_t c) {
      const float xs = xn[c] * fs.xscale;
      return xs * xs;
    });
    float* un = u + n * F;
    exp_features(un, F, h, query ? row_max(un, F) : key_stab, fs.inv_sqrt_f);
  }
}

// phi [M, F] from the pre-activations p: p + eps (softmax map), max(p, 0) + eps (relu map).
VIT_ALWAYS_INLINE void phi_of(float* phi, const float* p, int64_t n, const FeatureSetup& fs) {
  if (fs.softmax)
    for (int64_t i = 0; i < n; ++i) phi[i] = p[i] + fs.eps;
  else
    for (int64_t i = 0; i < n; ++i) phi[i] = std::max(p[i], 0.0f) + fs.eps;
}

// c [M, F] = a [M, d] (row stride lda) b^T, b [F, d]; bt = b^T [d, F] for the head products.
VIT_ALWAYS_INLINE void times_t(float* c, const float* a, int64_t lda, int64_t M, const float* b,
                               const float* bt, const FeatureSetup& fs) {
  if (fs.wt) detail::scores(c, fs.F, a, lda, M, bt, fs.F, fs.d);
  else gemm(false, true, M, fs.F, fs.d, 1.0f, a, lda, b, fs.d, 0.0f, c, fs.F);
}

// c [M, d] (row stride ldc) = (add ? c : 0) + a [M, F] b [F, d].
VIT_ALWAYS_INLINE void times(float* c, int64_t ldc, bool add, const float* a, int64_t M,
                             const float* b, const FeatureSetup& fs) {
  const int64_t d = fs.d, F = fs.F;
  const detail::Write w = add ? detail::Write::Add : detail::Write::Store;
  if (fs.wt) detail::values(c, ldc, w, a, F, 1, M, b, d, F, d);
  else gemm(false, false, M, d, F, 1.0f, a, F, b, d, add ? 1.0f : 0.0f, c, ldc);
}

// c [F, d] = (add ? c : 0) + a^T b for a [M, F], b [M, d] (row stride ldb).
VIT_ALWAYS_INLINE void times_tn(float* c, bool add, const float* a, const float* b, int64_t ldb,
                                int64_t M, const FeatureSetup& fs) {
  const int64_t d = fs.d, F = fs.F;
  const detail::Write w = add ? detail::Write::Add : detail::Write::Store;
  if (fs.wt) detail::values(c, d, w, a, 1, F, F, b, ldb, M, d);
  else gemm(true, false, F, d, M, 1.0f, a, F, b, ldb, add ? 1.0f : 0.0f, c, d);
}

// dx rows (stride ld) = (add ? dx : 0) + d^-1/4 * d(sum_f phi_nf g_nf)/dx'_n for M rows; g [M, F]
// is overwritten
// with gz = g * dphi/dz (dphi/dz = p for the softmax map, [p > 0] for relu).
// softmax: dx' = gz W - x' sum_f gz; relu: dx' = gz W. dxs: [M, d] scratch.
VIT_ALWAYS_INLINE void feature_backward(float* dx, bool add, float* g, const float* p,
                                        const float* x, int64_t ld, int64_t M, float* dxs,
                                        const FeatureSetup& fs) {
  const int64_t d = fs.d, F = fs.F;
  if (fs.softmax)
    for (int64_t i = 0; i < M * F; ++i) g[i] *= p[i];
  else
    for (int64_t i = 0; i < M * F; ++i) g[i] *= p[i] > 0.0f ? 1.0f : 0.0f;
  times(dxs, d, false, g, M, fs.w, fs);
  for (int64_t n = 0; n < M; ++n) {
    float* dn = dxs + n * d;
    if (fs.softmax) {
      const float* gn = g + n * F;
      const float gsum = lane_sum(F, [&](int64_t f) { return gn[f]; });
      for (int64_t c = 0; c < d; ++c) dn[c] -= (x[n * ld + c] * fs.xscale) * gsum;
    }
    float* dxn = dx + n * ld;
    if (add)
      for (int64_t c = 0; c < d; ++c) dxn[c] += dn[c] * fs.xscale;
    else
      for (int64_t c = 0; c < d; ++c) dxn[c] = dn[c] * fs.xscale;
  }
}

// Pairs per thread block so that a block has at least ~2^18 multiply-adds (tiny calls stay serial).
int64_t grain_for(int64_t work_per_item) {
  constexpr int64_t kMinWork = int64_t{1} << 18;
  return std::max<int64_t>(1, kMinWork / std::max<int64_t>(1, work_per_item));
}

// Whether the per-head products go through kernels/head_products.
bool use_head_products(const FavorDims& dims) {
#ifdef VIT_FAVOR_X86
  return dims.head_products && simd_avx2_fma() && dims.head_dim % 8 == 0 &&
         dims.features % 8 == 0;
#else
  (void)dims;
  return false;
#endif
}

// dst [cols, rows] = s * src [rows, cols] transposed.
void transpose(float* dst, const float* src, int64_t rows, int64_t cols, float s) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = s * src[r * cols + c];
}

// wt: [d, F] storage for the head products' xscale W^T (filled here when they are used).
FeatureSetup make_setup(const float* w, const FavorDims& dims, FavorMap map, float eps,
                        std::vector<float>& wt) {
  FeatureSetup fs;
  fs.w = w;
  fs.wt = nullptr;
  fs.d = dims.head_dim;
  fs.F = dims.features;
  fs.xscale = std::pow(static_cast<float>(dims.head_dim), -0.25f);
  fs.inv_sqrt_f = 1.0f / std::sqrt(static_cast<float>(dims.features));
  fs.eps = eps;
  fs.softmax = map == FavorMap::Softmax;
  if (use_head_products(dims)) {
    wt.resize(static_cast<size_t>(fs.d * fs.F));
    transpose(wt.data(), w, fs.F, fs.d, fs.xscale);
    fs.wt = wt.data();
  }
  return fs;
}

// Per-thread scratch: u [N, F] (the keys' projections, forward), blocks p, phi, g [R, F] and
// dnum, dxs [R, d], dden [R]; dkv [F, d], dksum [F] and mt [d, F] (kv^T or dkv^T) per pair.
struct Scratch {
  int64_t R;
  std::vector<float> u, p, phi, g, dnum, dxs, dden, dkv, dksum, mt;
  Scratch(int64_t N, int64_t d, int64_t F, bool forward)
      : R(std::min(N, block_rows(F))), u(forward ? N * F : 0), p(R * F), phi(R * F),
        g(forward ? 0 : R * F), dnum(forward ? 0 : R * d), dxs(forward ? 0 : R * d),
        dden(forward ? 0 : R), dkv(forward ? 0 : F * d), dksum(forward ? 0 : F), mt(d * F) {}
};

// One (b, h) pair's forward: o [Q, d] (row stride ldo) = phi(Q) kv / (phi(Q) ksum) for the first
// Q query rows, kv [F, d], ksum [F], den [Q], key_stab. Rows in blocks of R (all in L1). Built for
// baseline x86-64 and AVX2 + FMA so that the row passes vectorise.
VIT_ALWAYS_INLINE void forward_pair_body(float* o, int64_t ldo, float* kv, float* ksum, float* den,
                                         float* key_stab, QkvHead x, int64_t ld, int64_t N,
                                         int64_t Q, const FeatureSetup& fs, Scratch& s) {
  const int64_t d = fs.d, F = fs.F, R = s.R;
  float *u = s.u.data(), *phi = s.phi.data(), *p = s.p.data();
  // Keys: kv = phi(K)^T V, ksum = phi(K)^T 1. The keys' stabiliser is one max over all their
  // projections, so they are all projected first (block by block, as the backward does).
  for (int64_t n0 = 0; n0 < N; n0 += R)
    project(u + n0 * F, x.k + n0 * ld, ld, std::min(R, N - n0), fs);
  *key_stab = fs.softmax ? row_max(u, N * F) : 0.0f;
  std::fill(ksum, ksum + F, 0.0f);
  for (int64_t n0 = 0; n0 < N; n0 += R) {
    const int64_t M = std::min(R, N - n0);
    float* ub = u + n0 * F;
    exp_rows(ub, x.k + n0 * ld, ld, M, false, *key_stab, fs);
    phi_of(phi, ub, M * F, fs);
    times_tn(kv, n0 > 0, phi, x.v + n0 * ld, ld, M, fs);
    for (int64_t n = 0; n < M; ++n)
      for (int64_t f = 0; f < F; ++f) ksum[f] += phi[n * F + f];
  }
  // Queries (the first Q): out_n = num_n / den_n, num_n = phi(q_n) kv, den_n = phi(q_n) . ksum.
  for (int64_t n0 = 0; n0 < Q; n0 += R) {
    const int64_t M = std::min(R, Q - n0);
    const float* xq = x.q + n0 * ld;
    project(p, xq, ld, M, fs);
    exp_rows(p, xq, ld, M, true, 0.0f, fs);
    phi_of(phi, p, M * F, fs);
    float* ob = o + n0 * ldo;
    times(ob, ldo, false, phi, M, kv, fs);
    for (int64_t n = 0; n < M; ++n) {
      const float* phn = phi + n * F;
      const float dn = lane_sum(F, [&](int64_t f) { return phn[f] * ksum[f]; });
      den[n0 + n] = dn;
      const float inv = 1.0f / std::max(dn, kFavorMinDen);
      for (int64_t c = 0; c < d; ++c) ob[n * ldo + c] *= inv;
    }
  }
}
VIT_SIMD_VARIANTS(void, forward_pair,
                  (float* o, int64_t ldo, float* kv, float* ksum, float* den, float* key_stab,
                   QkvHead x, int64_t ld, int64_t N, int64_t Q, const FeatureSetup& fs,
                   Scratch& s),
                  (o, ldo, kv, ksum, den, key_stab, x, ld, N, Q, fs, s))

// One (b, h) pair's backward: the gradients of q, k, v rows (stride ld) are added to (stored if
// fresh; q rows Q..N-1 then 0); dout and out rows (the first Q queries') at stride ldo; kv, ksum,
// den, key_stab as saved by the forward. phi(Q) and phi(K) are recomputed block by block (same
// calls as the forward: same bits).
VIT_ALWAYS_INLINE void backward_pair_body(float* dq, float* dk, float* dv, int64_t ld,
                                          const float* dout, const float* out, int64_t ldo,
                                          const float* kv, const float* ksum, const float* den,
                                          float key_stab, QkvHead x, int64_t N, int64_t Q,
                                          bool fresh, const FeatureSetup& fs, Scratch& s) {
  const int64_t d = fs.d, F = fs.F, R = s.R;
  float *p = s.p.data(), *phi = s.phi.data(), *g = s.g.data(), *dnum = s.dnum.data();
  float *dden = s.dden.data(), *dkv = s.dkv.data(), *dksum = s.dksum.data(), *mt = s.mt.data();

  // Queries. g = dL/dphi(Q) = dnum kv^T + dden ksum^T; dkv = phi(Q)^T dnum; dksum = phi(Q)^T dden.
  if (fs.wt) transpose(mt, kv, F, d, 1.0f);
  std::fill(dksum, dksum + F, 0.0f);
  for (int64_t n0 = 0; n0 < Q; n0 += R) {
    const int64_t M = std::min(R, Q - n0);
    for (int64_t n = 0; n < M; ++n) {  // out = num / den: dnum = dout / den, dden = -dout.out / den
      const float* don = dout + (n0 + n) * ldo;
      const float* on = out + (n0 + n) * ldo;
      const float dn = den[n0 + n];
      const float inv = 1.0f / std::max(dn, kFavorMinDen);
      const float dot = lane_sum(d, [&](int64_t c) { return don[c] * on[c]; });
      for (int64_t c = 0; c < d; ++c) dnum[n * d + c] = don[c] * inv;
      dden[n] = dn < kFavorMinDen ? 0.0f : -dot * inv;  // clamped: constant denominator
    }
    const float* xq = x.q + n0 * ld;
    project(p, xq, ld, M, fs);
    exp_rows(p, xq, ld, M, true, 0.0f, fs);
    phi_of(phi, p, M * F, fs);
    times_t(g, dnum, d, M, kv, mt, fs);
    for (int64_t n = 0; n < M; ++n)
      for (int64_t f = 0; f < F; ++f) g[n * F + f] += dden[n] * ksum[f];
    times_tn(dkv, n0 > 0, phi, dnum, d, M, fs);
    for (int64_t n = 0; n < M; ++n)
      for (int64_t f = 0; f < F; ++f) dksum[f] += phi[n * F + f] * dden[n];
    feature_backward(dq + n0 * ld, !fresh, g, p, xq, ld, M, s.dxs.data(), fs);
  }
  if (fresh)
    for (int64_t n = Q; n < N; ++n) std::fill(dq + n * ld, dq + n * ld + d, 0.0f);

  // Keys and values. dV = phi(K) dkv; g = dL/dphi(K) = V dkv^T + dksum.
  if (fs.wt) transpose(mt, dkv, F, d, 1.0f);
  for (int64_t n0 = 0; n0 < N; n0 += R) {
    const int64_t M = std::min(R, N - n0);
    const float* xk = x.k + n0 * ld;
    project(p, xk, ld, M, fs);
    exp_rows(p, xk, ld, M, false, key_stab, fs);
    phi_of(phi, p, M * F, fs);
    times(dv + n0 * ld, ld, !fresh, phi, M, dkv, fs);
    times_t(g, x.v + n0 * ld, ld, M, dkv, mt, fs);
    for (int64_t n = 0; n < M; ++n)
      for (int64_t f = 0; f < F; ++f) g[n * F + f] += dksum[f];
    feature_backward(dk + n0 * ld, !fresh, g, p, xk, ld, M, s.dxs.data(), fs);
  }
}
VIT_SIMD_VARIANTS(void, backward_pair,
                  (float* dq, float* dk, float* dv, int64_t ld, const float* dout, const float* out,
                   int64_t ldo, const float* kv, const float* ksum, const float* den, float key_stab,
                   QkvHead x, int64_t N, int64_t Q, bool fresh, const FeatureSetup& fs,
                   Scratch& s),
                  (dq, dk, dv, ld, dout, out, ldo, kv, ksum, den, key_stab, x, N, Q, fresh, fs, s))

}  // namespace

void favor_forward(float* out, float* kv, float* ksum, float* den, float* key_stab,
                   const float* qkv, const float* projection, const FavorDims& dims, FavorMap map,
                   float eps) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim, F = dims.features;
  const int64_t D = H * d, Q = dims.query_rows();
  std::vector<float> wt;
  const FeatureSetup fs = make_setup(projection, dims, map, eps, wt);
  parallel_range(0, B * H, grain_for(2 * (N + Q) * F * d), [&](int64_t lo, int64_t hi) {
    Scratch scratch(N, d, F, true);  // per thread, freed on return
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      forward_pair(out + b * Q * D + h * d, D, kv + bh * F * d, ksum + bh * F, den + bh * Q,
                   key_stab + bh, qkv_head(qkv, b, h, N, D, d), 3 * D, N, Q, fs, scratch);
    }
  });
}

void favor_backward(float* dqkv, const float* dout, const float* out, const float* kv,
                    const float* ksum, const float* den, const float* key_stab, const float* qkv,
                    const float* projection, const FavorDims& dims, FavorMap map, float eps,
                    bool fresh) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim, F = dims.features;
  const int64_t D = H * d, ld = 3 * D, Q = dims.query_rows();
  std::vector<float> wt;
  const FeatureSetup fs = make_setup(projection, dims, map, eps, wt);
  parallel_range(0, B * H, grain_for(2 * (N + Q) * F * d), [&](int64_t lo, int64_t hi) {
    Scratch scratch(N, d, F, false);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      float* dx = dqkv + b * N * ld + h * d;
      const int64_t row = b * Q * D + h * d;
      backward_pair(dx, dx + D, dx + 2 * D, ld, dout + row, out + row, D, kv + bh * F * d,
                    ksum + bh * F, den + bh * Q, key_stab[bh], qkv_head(qkv, b, h, N, D, d), N,
                    Q, fresh, fs, scratch);
    }
  });
}

}  // namespace kernels
}  // namespace vit
