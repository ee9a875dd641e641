// FAVOR+ forward/backward per (batch, head), and the orthogonal random-feature drawer.
// Feature rows are kept as "pre-activations" p [F]: softmax map p = exp(w.x' - |x'|^2/2 - stab)
// / sqrt(F) (then phi = p + eps and dphi/dz = p), relu map p = w.x' (then phi = relu(p) + eps and
// dphi/dz = [p > 0]). Forward and backward compute p with the same code, so the same bits.
// Inner loops are axpys (over F with W^T, over d with W or kv rows) that vectorise without
// reassociating float sums.
#include "kernels/favor.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.hpp"

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

inline void axpy(float* __restrict y, float a, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

struct FeatureSetup {
  const float* wt;  // W^T [d, F]
  const float* w;   // W [F, d]
  int64_t d, F;
  float xscale;      // d^-1/4
  float inv_sqrt_f;  // 1/sqrt(F)
  float eps;
  bool softmax;
  float phi(float p) const { return (softmax ? p : std::max(p, 0.0f)) + eps; }
  float dphi_dz(float p) const { return softmax ? p : (p > 0.0f ? 1.0f : 0.0f); }
};

// z [F] = W x' with x' = x * d^-1/4 written to xs [d]; returns |x'|^2 / 2.
float project_row(float* z, float* xs, const float* x, const FeatureSetup& fs) {
  float half_sq = 0.0f;
  for (int64_t c = 0; c < fs.d; ++c) {
    xs[c] = x[c] * fs.xscale;
    half_sq += xs[c] * xs[c];
  }
  std::fill(z, z + fs.F, 0.0f);
  for (int64_t c = 0; c < fs.d; ++c) axpy(z, xs[c], fs.wt + c * fs.F, fs.F);
  return 0.5f * half_sq;
}

// Pre-activations of one query row into p [F] (softmax: stabiliser = max_f w_f.q' of this row).
void query_features(float* p, float* xs, const float* q, const FeatureSetup& fs) {
  const float h = project_row(p, xs, q, fs);
  if (!fs.softmax) return;
  const float stab = *std::max_element(p, p + fs.F);
  for (int64_t f = 0; f < fs.F; ++f) p[f] = std::exp((p[f] - h) - stab) * fs.inv_sqrt_f;
}

// Pre-activations of all N key rows (row stride ld) into p [N, F] (softmax: one stabiliser, the
// max over keys and features of w_f.k' for this (b, h); it is never mixed across the batch).
void key_features(float* p, float* xs, const float* k, int64_t ld, int64_t N, const FeatureSetup& fs) {
  float stab = -INFINITY;
  for (int64_t n = 0; n < N; ++n) {
    float* pn = p + n * fs.F;
    const float h = project_row(pn, xs, k + n * ld, fs);
    if (!fs.softmax) continue;
    stab = std::max(stab, *std::max_element(pn, pn + fs.F));
    for (int64_t f = 0; f < fs.F; ++f) pn[f] -= h;
  }
  if (!fs.softmax) return;
  for (int64_t i = 0; i < N * fs.F; ++i) p[i] = std::exp(p[i] - stab) * fs.inv_sqrt_f;
}

// dx [d] += d^-1/4 * d(phi row . g)/dx' where gz[f] = g[f] * dphi_f/dz_f (overwritten into g).
// softmax: dx' = sum_f gz_f (w_f - x'); relu: dx' = sum_f gz_f w_f.
void feature_backward(float* dx, float* g, const float* p, const float* xs, float* dxs,
                      const FeatureSetup& fs) {
  float gsum = 0.0f;
  for (int64_t f = 0; f < fs.F; ++f) {
    g[f] *= fs.dphi_dz(p[f]);
    gsum += g[f];
  }
  std::fill(dxs, dxs + fs.d, 0.0f);
  for (int64_t f = 0; f < fs.F; ++f)
    if (g[f] != 0.0f) axpy(dxs, g[f], fs.w + f * fs.d, fs.d);
  if (fs.softmax)
    for (int64_t c = 0; c < fs.d; ++c) dxs[c] -= xs[c] * gsum;
  for (int64_t c = 0; c < fs.d; ++c) dx[c] += dxs[c] * fs.xscale;
}

std::vector<float> transpose(const float* a, int64_t rows, int64_t cols) {
  std::vector<float> t(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[c * rows + r] = a[r * cols + c];
  return t;
}

// Pairs per thread block so that a block has at least ~2^18 multiply-adds (tiny calls stay serial).
int64_t grain_for(int64_t work_per_item) {
  constexpr int64_t kMinWork = int64_t{1} << 18;
  return std::max<int64_t>(1, kMinWork / std::max<int64_t>(1, work_per_item));
}

FeatureSetup make_setup(const float* w, const std::vector<float>& wt, const FavorDims& dims,
                        FavorMap map, float eps) {
  FeatureSetup fs;
  fs.w = w;
  fs.wt = wt.data();
  fs.d = dims.head_dim;
  fs.F = dims.features;
  fs.xscale = std::pow(static_cast<float>(dims.head_dim), -0.25f);
  fs.inv_sqrt_f = 1.0f / std::sqrt(static_cast<float>(dims.features));
  fs.eps = eps;
  fs.softmax = map == FavorMap::Softmax;
  return fs;
}

}  // namespace

void favor_forward(float* out, float* kv, float* ksum, float* den, const float* qkv,
                   const float* projection, const FavorDims& dims, FavorMap map, float eps) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim, F = dims.features;
  const int64_t D = H * d, ld = 3 * D;
  const std::vector<float> wt = transpose(projection, F, d);
  const FeatureSetup fs = make_setup(projection, wt, dims, map, eps);

  parallel_range(0, B * H, grain_for(4 * N * F * d), [&](int64_t lo, int64_t hi) {
    // Per-thread scratch: key features [N, F] (transient, freed on return) and row buffers.
    std::vector<float> pk(static_cast<size_t>(N * F)), pq(F), xs(d), num(d);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* base = qkv + b * N * ld;
      const float* q = base + h * d;
      const float* k = base + D + h * d;
      const float* v = base + 2 * D + h * d;
      float* kv_bh = kv + bh * F * d;     // [F, d]
      float* ksum_bh = ksum + bh * F;     // [F]

      key_features(pk.data(), xs.data(), k, ld, N, fs);
      std::fill(kv_bh, kv_bh + F * d, 0.0f);
      std::fill(ksum_bh, ksum_bh + F, 0.0f);
      for (int64_t n = 0; n < N; ++n) {  // kv = phi(K)^T V, ksum = phi(K)^T 1
        const float* pn = pk.data() + n * F;
        const float* vn = v + n * ld;
        for (int64_t f = 0; f < F; ++f) {
          const float phi = fs.phi(pn[f]);
          ksum_bh[f] += phi;
          axpy(kv_bh + f * d, phi, vn, d);
        }
      }
      for (int64_t n = 0; n < N; ++n) {  // out_n = phi(q_n) kv / (phi(q_n) . ksum)
        query_features(pq.data(), xs.data(), q + n * ld, fs);
        std::fill(num.begin(), num.end(), 0.0f);
        float dn = 0.0f;
        for (int64_t f = 0; f < F; ++f) {
          const float phi = fs.phi(pq[f]);
          dn += phi * ksum_bh[f];
          axpy(num.data(), phi, kv_bh + f * d, d);
        }
        den[bh * N + n] = dn;
        const float inv = 1.0f / std::max(dn, kFavorMinDen);
        float* o = out + (b * N + n) * D + h * d;
        for (int64_t c = 0; c < d; ++c) o[c] = num[c] * inv;
      }
    }
  });
}

void favor_backward(float* dqkv, const float* dout, const float* out, const float* kv,
                    const float* ksum, const float* den, const float* qkv, const float* projection,
                    const FavorDims& dims, FavorMap map, float eps) {
  const int64_t B = dims.batch, N = dims.tokens, H = dims.heads, d = dims.head_dim, F = dims.features;
  const int64_t D = H * d, ld = 3 * D;
  const std::vector<float> wt = transpose(projection, F, d);
  const FeatureSetup fs = make_setup(projection, wt, dims, map, eps);

  parallel_range(0, B * H, grain_for(4 * N * F * d), [&](int64_t lo, int64_t hi) {
    std::vector<float> pk(static_cast<size_t>(N * F)), p(F), g(F), xs(d), dxs(d), dnum(d);
    std::vector<float> kvt(d * F), dkv(F * d), dkvt(d * F), dksum(F);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const float* base = qkv + b * N * ld;
      const float* q = base + h * d;
      const float* k = base + D + h * d;
      const float* v = base + 2 * D + h * d;
      float* dbase = dqkv + b * N * ld;
      const float* kv_bh = kv + bh * F * d;
      const float* ksum_bh = ksum + bh * F;
      for (int64_t f = 0; f < F; ++f)
        for (int64_t c = 0; c < d; ++c) kvt[c * F + f] = kv_bh[f * d + c];
      std::fill(dkv.begin(), dkv.end(), 0.0f);
      std::fill(dksum.begin(), dksum.end(), 0.0f);

      // Queries. Forward: out_n = num_n / den_n, num_n = phi_n kv, den_n = phi_n . ksum.
      for (int64_t n = 0; n < N; ++n) {
        const float* don = dout + (b * N + n) * D + h * d;
        const float* on = out + (b * N + n) * D + h * d;
        const float dn = den[bh * N + n];
        const float inv = 1.0f / std::max(dn, kFavorMinDen);
        float dot = 0.0f;
        for (int64_t c = 0; c < d; ++c) {
          dnum[c] = don[c] * inv;
          dot += don[c] * on[c];
        }
        const float dden = dn < kFavorMinDen ? 0.0f : -dot * inv;  // clamped: constant denominator
        query_features(p.data(), xs.data(), q + n * ld, fs);
        // g = dL/dphi_n = kv dnum + dden ksum; dkv += phi_n^T dnum; dksum += phi_n dden
        for (int64_t f = 0; f < F; ++f) g[f] = dden * ksum_bh[f];
        for (int64_t c = 0; c < d; ++c) axpy(g.data(), dnum[c], kvt.data() + c * F, F);
        for (int64_t f = 0; f < F; ++f) {
          const float phi = fs.phi(p[f]);
          axpy(dkv.data() + f * d, phi, dnum.data(), d);
          dksum[f] += phi * dden;
        }
        feature_backward(dbase + n * ld + h * d, g.data(), p.data(), xs.data(), dxs.data(), fs);
      }

      // Keys and values. Forward: kv = sum_n phi(k_n)^T v_n, ksum = sum_n phi(k_n).
      key_features(pk.data(), xs.data(), k, ld, N, fs);
      for (int64_t f = 0; f < F; ++f)
        for (int64_t c = 0; c < d; ++c) dkvt[c * F + f] = dkv[f * d + c];
      for (int64_t n = 0; n < N; ++n) {
        const float* pn = pk.data() + n * F;
        const float* vn = v + n * ld;
        float* dvn = dbase + n * ld + 2 * D + h * d;
        // dv_n += sum_f phi_nf dkv[f]; g = dL/dphi(k_n) = dkv v_n + dksum
        for (int64_t f = 0; f < F; ++f) axpy(dvn, fs.phi(pn[f]), dkv.data() + f * d, d);
        std::copy(dksum.begin(), dksum.end(), g.begin());
        for (int64_t c = 0; c < d; ++c) axpy(g.data(), vn[c], dkvt.data() + c * F, F);
        for (int64_t c = 0; c < d; ++c) xs[c] = k[n * ld + c] * fs.xscale;  // x' for feature_backward
        feature_backward(dbase + n * ld + D + h * d, g.data(), pn, xs.data(), dxs.data(), fs);
      }
    }
  });
}

}  // namespace kernels
}  // namespace vit
