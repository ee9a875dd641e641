// FAVOR+ forward/backward per (batch, head), and the orthogonal random-feature drawer.
// Feature rows are kept as "pre-activations" p [F]: softmax map p = exp(w.x' - |x'|^2/2 - stab)
// / sqrt(F) (then phi = p + eps and dphi/dz = p), relu map p = w.x' (then phi = relu(p) + eps and
// dphi/dz = [p > 0]). Forward and backward compute p with the same code, so the same bits.
// Per (b, h) every product (projections X W^T, phi(K)^T V, phi(Q) kv and their gradients) is
// one register-tiled product of kernels/head_products when d and F are multiples of 8 on an
// AVX2 + FMA CPU (W1 Performer ~8% faster), else one GEMM call over all N rows; the rest are
// row passes that vectorise (fast_exp).
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
  float phi(float p) const { return (softmax ? p : std::max(p, 0.0f)) + eps; }
  float dphi_dz(float p) const { return softmax ? p : (p > 0.0f ? 1.0f : 0.0f); }
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

// Pre-activations of N rows x (row stride ld) into p [N, F]. Softmax map: queries are stabilised
// by their own row max of w.x', keys by one max over all rows and features (per (b, h), never
// mixed across the batch); the stabilisers cancel in the ratio and are not differentiated.
void features(float* p, const float* x, int64_t ld, int64_t N, bool query, const FeatureSetup& fs) {
  const int64_t d = fs.d, F = fs.F;
  if (fs.wt) detail::scores(p, F, x, ld, N, fs.wt, F, d);                 // u = x (xscale W^T)
  else gemm(false, true, N, F, d, fs.xscale, x, ld, fs.w, d, 0.0f, p, F);  // u = x' W^T
  if (!fs.softmax) return;
  const float key_stab = query ? 0.0f : row_max(p, N * F);
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * ld;
    const float h = 0.5f * lane_sum(d, [&](int64_t c) {
      const float xs = xn[c] * fs.xscale;
      return xs * xs;
    });
    float* pn = p + n * F;
    const float stab = query ? row_max(pn, F) : key_stab;
    exp_features(pn, F, h, stab, fs.inv_sqrt_f);
  }
}

void phi_of(float* phi, const float* p, int64_t n, const FeatureSetup& fs) {
  if (fs.softmax)
    for (int64_t i = 0; i < n; ++i) phi[i] = p[i] + fs.eps;
  else
    for (int64_t i = 0; i < n; ++i) phi[i] = std::max(p[i], 0.0f) + fs.eps;
}

// dx rows (stride ldx) += d^-1/4 * d(sum_f phi_nf g_nf)/dx'_n for N rows; g [N, F] is overwritten
// with gz = g * dphi/dz. softmax: dx' = gz W - x' sum_f gz; relu: dx' = gz W. dxs: [N, d] scratch.
void feature_backward(float* dx, int64_t ldx, float* g, const float* p, const float* x, int64_t ld,
                      int64_t N, float* dxs, const FeatureSetup& fs) {
  const int64_t d = fs.d, F = fs.F;
  for (int64_t i = 0; i < N * F; ++i) g[i] *= fs.dphi_dz(p[i]);
  if (fs.wt) detail::values(dxs, d, detail::Write::Store, g, F, 1, N, fs.w, d, F, d);
  else gemm(false, false, N, d, F, 1.0f, g, F, fs.w, d, 0.0f, dxs, d);
  for (int64_t n = 0; n < N; ++n) {
    float* dn = dxs + n * d;
    if (fs.softmax) {
      const float* gn = g + n * F;
      const float gsum = lane_sum(F, [&](int64_t f) { return gn[f]; });
      for (int64_t c = 0; c < d; ++c) dn[c] -= (x[n * ld + c] * fs.xscale) * gsum;
    }
    float* dxn = dx + n * ldx;
    for (int64_t c = 0; c < d; ++c) dxn[c] += dn[c] * fs.xscale;
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

}  // namespace

void favor_forward(float* out, float* kv, float* ksum, float* den, const float* qkv,
                   const float* projection, const FavorDims& dims, FavorMap map, float eps) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim, F = dims.features;
  const int64_t D = H * d, ld = 3 * D;
  std::vector<float> wt;
  const FeatureSetup fs = make_setup(projection, dims, map, eps, wt);
  const bool tiles = fs.wt != nullptr;

  parallel_range(0, B * H, grain_for(4 * N * F * d), [&](int64_t lo, int64_t hi) {
    // Per-thread scratch (transient, freed on return): pre-activations and phi of keys / queries.
    std::vector<float> p(static_cast<size_t>(N * F)), phi(static_cast<size_t>(N * F));
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const auto [q, k, v] = qkv_head(qkv, b, h, N, D, d);
      float* kv_bh = kv + bh * F * d;     // [F, d]
      float* ksum_bh = ksum + bh * F;     // [F]

      features(p.data(), k, ld, N, false, fs);
      phi_of(phi.data(), p.data(), N * F, fs);
      if (tiles) detail::values(kv_bh, d, detail::Write::Store, phi.data(), 1, F, F, v, ld, N, d);
      else gemm(true, false, F, d, N, 1.0f, phi.data(), F, v, ld, 0.0f, kv_bh, d);  // kv = phi(K)^T V
      std::fill(ksum_bh, ksum_bh + F, 0.0f);                                     // ksum = phi(K)^T 1
      for (int64_t n = 0; n < N; ++n)
        for (int64_t f = 0; f < F; ++f) ksum_bh[f] += phi[n * F + f];

      features(p.data(), q, ld, N, true, fs);
      phi_of(phi.data(), p.data(), N * F, fs);
      float* o = out + b * N * D + h * d;  // row n at o + n * D
      if (tiles) detail::values(o, D, detail::Write::Store, phi.data(), F, 1, N, kv_bh, d, F, d);
      else gemm(false, false, N, d, F, 1.0f, phi.data(), F, kv_bh, d, 0.0f, o, D);  // num = phi(Q) kv
      for (int64_t n = 0; n < N; ++n) {  // out_n = num_n / (phi(q_n) . ksum)
        const float* phn = phi.data() + n * F;
        const float dn = lane_sum(F, [&](int64_t f) { return phn[f] * ksum_bh[f]; });
        den[bh * N + n] = dn;
        const float inv = 1.0f / std::max(dn, kFavorMinDen);
        for (int64_t c = 0; c < d; ++c) o[n * D + c] *= inv;
      }
    }
  });
}

void favor_backward(float* dqkv, const float* dout, const float* out, const float* kv,
                    const float* ksum, const float* den, const float* qkv, const float* projection,
                    const FavorDims& dims, FavorMap map, float eps) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim, F = dims.features;
  const int64_t D = H * d, ld = 3 * D;
  std::vector<float> wt;
  const FeatureSetup fs = make_setup(projection, dims, map, eps, wt);
  const bool tiles = fs.wt != nullptr;

  parallel_range(0, B * H, grain_for(4 * N * F * d), [&](int64_t lo, int64_t hi) {
    const size_t NF = static_cast<size_t>(N * F), Nd = static_cast<size_t>(N * d);
    std::vector<float> mt(tiles ? static_cast<size_t>(d * F) : 0);  // kv^T or dkv^T [d, F]
    std::vector<float> p(NF), phi(NF), g(NF), dnum(Nd), dxs(Nd), dden(static_cast<size_t>(N));
    std::vector<float> dkv(static_cast<size_t>(F * d)), dksum(static_cast<size_t>(F));
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const auto [q, k, v] = qkv_head(qkv, b, h, N, D, d);
      float* dbase = dqkv + b * N * ld;
      const float* kv_bh = kv + bh * F * d;
      const float* ksum_bh = ksum + bh * F;

      // Queries. Forward: out_n = num_n / den_n, num_n = phi_n kv, den_n = phi_n . ksum.
      for (int64_t n = 0; n < N; ++n) {
        const float* don = dout + (b * N + n) * D + h * d;
        const float* on = out + (b * N + n) * D + h * d;
        const float dn = den[bh * N + n];
        const float inv = 1.0f / std::max(dn, kFavorMinDen);
        const float dot = lane_sum(d, [&](int64_t c) { return don[c] * on[c]; });
        for (int64_t c = 0; c < d; ++c) dnum[n * d + c] = don[c] * inv;
        dden[n] = dn < kFavorMinDen ? 0.0f : -dot * inv;  // clamped: constant denominator
      }
      features(p.data(), q, ld, N, true, fs);
      phi_of(phi.data(), p.data(), N * F, fs);
      // g = dL/dphi(Q) = dnum kv^T + dden ksum^T; dkv = phi(Q)^T dnum; dksum = phi(Q)^T dden
      if (tiles) {
        transpose(mt.data(), kv_bh, F, d, 1.0f);
        detail::scores(g.data(), F, dnum.data(), d, N, mt.data(), F, d);
      } else {
        gemm(false, true, N, F, d, 1.0f, dnum.data(), d, kv_bh, d, 0.0f, g.data(), F);
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t f = 0; f < F; ++f) g[n * F + f] += dden[n] * ksum_bh[f];
      if (tiles) detail::values(dkv.data(), d, detail::Write::Store, phi.data(), 1, F, F, dnum.data(), d, N, d);
      else gemm(true, false, F, d, N, 1.0f, phi.data(), F, dnum.data(), d, 0.0f, dkv.data(), d);
      std::fill(dksum.begin(), dksum.end(), 0.0f);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t f = 0; f < F; ++f) dksum[f] += phi[n * F + f] * dden[n];
      feature_backward(dbase + h * d, ld, g.data(), p.data(), q, ld, N, dxs.data(), fs);

      // Keys and values. Forward: kv = sum_n phi(k_n)^T v_n, ksum = sum_n phi(k_n).
      features(p.data(), k, ld, N, false, fs);
      phi_of(phi.data(), p.data(), N * F, fs);
      // dV += phi(K) dkv; g = dL/dphi(K) = V dkv^T + dksum
      if (tiles) {
        detail::values(dbase + 2 * D + h * d, ld, detail::Write::Add, phi.data(), F, 1, N, dkv.data(), d, F, d);
        transpose(mt.data(), dkv.data(), F, d, 1.0f);
        detail::scores(g.data(), F, v, ld, N, mt.data(), F, d);
      } else {
        gemm(false, false, N, d, F, 1.0f, phi.data(), F, dkv.data(), d, 1.0f, dbase + 2 * D + h * d, ld);
        gemm(false, true, N, F, d, 1.0f, v, ld, dkv.data(), d, 0.0f, g.data(), F);
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t f = 0; f < F; ++f) g[n * F + f] += dksum[f];
      feature_backward(dbase + D + h * d, ld, g.data(), p.data(), k, ld, N, dxs.data(), fs);
    }
  });
}

}  // namespace kernels
}  // namespace vit
