// FAVOR+ kernels: forward against a naive double evaluation of the same formula (both feature
// maps), the orthogonal random features (orthogonality, chi_d norms), the approximation of exact
// softmax attention as F grows, and 1- vs 2-thread bit-identity.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "core/parallel.hpp"
#include "kernels/attention.hpp"
#include "kernels/favor.hpp"

using namespace vit;
using kernels::FavorDims;
using kernels::FavorMap;

namespace {

// The documented formula, written out in double per (b, h) with explicit phi matrices [N, F].
std::vector<double> naive_favor(const Tensor& qkv, const Tensor& w, const FavorDims& dm, FavorMap map,
                                double eps) {
  const int64_t B = dm.batch, N = dm.tokens, H = dm.heads, d = dm.head_dim, F = dm.features, D = H * d;
  const double xs = std::pow(static_cast<double>(d), -0.25);
  std::vector<double> out(static_cast<size_t>(B * N * D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      // z[n][f] = w_f . x'_n, hh[n] = |x'_n|^2 / 2 for x = q (which = 0) or k (which = 1)
      auto features = [&](int which) {
        std::vector<double> z(static_cast<size_t>(N * F)), hh(static_cast<size_t>(N));
        for (int64_t n = 0; n < N; ++n) {
          const float* x = qkv.data() + (b * N + n) * 3 * D + which * D + h * d;
          for (int64_t c = 0; c < d; ++c) hh[n] += 0.5 * (x[c] * xs) * (x[c] * xs);
          for (int64_t f = 0; f < F; ++f) {
            double s = 0.0;
            for (int64_t c = 0; c < d; ++c) s += double(w[f * d + c]) * x[c] * xs;
            z[n * F + f] = s;
          }
        }
        std::vector<double> phi(static_cast<size_t>(N * F));
        double key_max = -1e300;
        for (double v : z) key_max = std::max(key_max, v);
        for (int64_t n = 0; n < N; ++n) {
          double row_max = -1e300;
          for (int64_t f = 0; f < F; ++f) row_max = std::max(row_max, z[n * F + f]);
          const double stab = which == 0 ? row_max : key_max;
          for (int64_t f = 0; f < F; ++f) {
            const double zf = z[n * F + f];
            phi[n * F + f] = map == FavorMap::Softmax
                                 ? std::exp(zf - hh[n] - stab) / std::sqrt(double(F)) + eps
                                 : std::max(zf, 0.0) + eps;
          }
        }
        return phi;
      };
      const std::vector<double> pq = features(0), pk = features(1);
      for (int64_t i = 0; i < N; ++i) {
        // out_i = sum_j (phi_q_i . phi_k_j) v_j / sum_j (phi_q_i . phi_k_j): the N x N form
        double den = 0.0;
        std::vector<double> num(static_cast<size_t>(d));
        for (int64_t j = 0; j < N; ++j) {
          double a = 0.0;
          for (int64_t f = 0; f < F; ++f) a += pq[i * F + f] * pk[j * F + f];
          den += a;
          for (int64_t c = 0; c < d; ++c) num[c] += a * qkv[(b * N + j) * 3 * D + 2 * D + h * d + c];
        }
        for (int64_t c = 0; c < d; ++c) out[(b * N + i) * D + h * d + c] = num[c] / den;
      }
    }
  return out;
}

Tensor run_favor(const Tensor& qkv, const Tensor& w, const FavorDims& dm, FavorMap map, float eps) {
  Tensor out = Tensor::empty({dm.batch, dm.tokens, dm.heads * dm.head_dim});
  Tensor kv = Tensor::empty({dm.batch, dm.heads, dm.features, dm.head_dim});
  Tensor ksum = Tensor::empty({dm.batch, dm.heads, dm.features});
  Tensor den = Tensor::empty({dm.batch, dm.heads, dm.tokens});
  Tensor key_stab = Tensor::empty({dm.batch, dm.heads});
  kernels::favor_forward(out.data(), kv.data(), ksum.data(), den.data(), key_stab.data(), qkv.data(),
                         w.data(), dm, map, eps);
  return out;
}

// Entries N(0, sd^2) from a Test stream.
Tensor normal_tensor(const Shape& shape, uint64_t key, float sd) {
  Tensor t = Tensor::empty(shape);
  Rng rng(key, RngPurpose::Test, 3);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = sd * rng.normal();
  return t;
}

}  // namespace

TEST(FavorKernel, ForwardMatchesNaiveDoubleFormula) {
  uint64_t key = 1;
  for (FavorMap map : {FavorMap::Softmax, FavorMap::Relu})
    for (int64_t N : {1, 7, 33})
      for (int64_t d : {4, 13, 16})  // 16 with F = 64, 344: the head products where available
        for (int64_t F : {3, 20, 64, 344}) {  // 344: rows in blocks of 12 (N = 33: three blocks)
          const FavorDims dm{2, N, 2, d, F};
          const Tensor qkv = random_tensor({2, N, 6 * d}, key++, -1.5f, 1.5f);
          Rng rng(key++, RngPurpose::Favor);
          const Tensor w = draw_favor_projection(F, d, rng);
          const float eps = map == FavorMap::Softmax ? 1e-6f : 1e-3f;
          const Tensor out = run_favor(qkv, w, dm, map, eps);
          const std::vector<double> ref = naive_favor(qkv, w, dm, map, eps);
          for (int64_t i = 0; i < out.numel(); ++i)
            ASSERT_NEAR(out[i], ref[i], 1e-5 + 1e-4 * std::fabs(ref[i]))
                << "map " << int(map) << " N " << N << " d " << d << " F " << F << " at " << i;
        }
}

TEST(FavorProjection, BlocksAreOrthogonalAndNormsChiDistributed) {
  const int64_t d = 16, F = 4 * d + 5;  // four full blocks and a truncated one
  Rng rng(3, RngPurpose::Favor);
  const Tensor w = draw_favor_projection(F, d, rng);
  ASSERT_EQ(w.shape(), (Shape{F, d}));
  auto dot = [&](int64_t a, int64_t b) {
    double s = 0.0;
    for (int64_t c = 0; c < d; ++c) s += double(w[a * d + c]) * w[b * d + c];
    return s;
  };
  double max_cos = 0.0;
  for (int64_t blk = 0; blk * d < F; ++blk)
    for (int64_t i = blk * d; i < std::min(F, (blk + 1) * d); ++i)
      for (int64_t j = blk * d; j < i; ++j)
        max_cos = std::max(max_cos, std::fabs(dot(i, j)) / std::sqrt(dot(i, i) * dot(j, j)));
  EXPECT_LT(max_cos, 1e-5);
  // Rows of different blocks are independent, hence not orthogonal in general.
  EXPECT_GT(std::fabs(dot(0, d)) / std::sqrt(dot(0, 0) * dot(d, d)), 1e-4);

  // Row norms ~ chi_16: mean sqrt(2) Gamma(8.5)/Gamma(8) = 3.9380, variance 16 - mean^2 = 0.4920.
  const int64_t rows = 4096;
  Rng rng2(4, RngPurpose::Favor);
  const Tensor big = draw_favor_projection(rows, d, rng2);
  double sum = 0.0, sum_sq = 0.0;
  for (int64_t f = 0; f < rows; ++f) {
    double n2 = 0.0;
    for (int64_t c = 0; c < d; ++c) n2 += double(big[f * d + c]) * big[f * d + c];
    sum += std::sqrt(n2);
    sum_sq += n2;
  }
  const double mean = sum / rows, var = sum_sq / rows - mean * mean;
  EXPECT_NEAR(mean, 3.9380, 0.04);  // standard error 0.011
  EXPECT_NEAR(var, 0.4920, 0.06);
}

TEST(FavorProjection, DefaultFeatureCount) {
  EXPECT_EQ(favor_default_features(16), 44);
  EXPECT_EQ(favor_default_features(32), 110);
  EXPECT_EQ(favor_default_features(64), 266);
}

// FAVOR+ is an estimator of softmax attention: its error must shrink as F grows. q, k ~ N(0, 0.5^2)
// with d = 16 keeps the attention rows clearly non-uniform (checked below) while the estimator's
// variance stays moderate. Errors are averaged over four inputs and projections (all seeded,
// so the test is deterministic; the averaging keeps the margins wide).
TEST(FavorKernel, ApproximatesSoftmaxAttentionAsFeaturesGrow) {
  const int64_t N = 64, d = 16;
  const kernels::AttentionDims adm{1, N, 1, d};
  std::vector<double> err_by_f;
  double non_uniform = 0.0;
  for (int64_t F : {16, 256, 4096}) {
    double err = 0.0;
    for (uint64_t seed : {1u, 2u, 3u, 4u}) {
      Tensor qkv = normal_tensor({1, N, 3 * d}, seed, 0.5f);
      for (int64_t n = 0; n < N; ++n)  // values ~ N(0, 1)
        for (int64_t c = 0; c < d; ++c) qkv[n * 3 * d + 2 * d + c] *= 2.0f;
      Tensor exact = Tensor::empty({1, N, d});
      Tensor lse = Tensor::empty({1, 1, N});
      kernels::attention_forward(exact.data(), lse.data(), qkv.data(), adm, {});
      Rng rng(100 + seed, RngPurpose::Favor);
      const Tensor w = draw_favor_projection(F, d, rng);
      const Tensor approx = run_favor(qkv, w, {1, N, 1, d, F}, FavorMap::Softmax, 1e-6f);
      double diff = 0.0, norm = 0.0, dev = 0.0;
      for (int64_t i = 0; i < exact.numel(); ++i) {
        diff += std::pow(double(approx[i]) - exact[i], 2);
        norm += std::pow(double(exact[i]), 2);
      }
      for (int64_t c = 0; c < d; ++c) {  // distance of exact attention from uniform weights
        double mean_v = 0.0;
        for (int64_t n = 0; n < N; ++n) mean_v += qkv[n * 3 * d + 2 * d + c] / double(N);
        for (int64_t n = 0; n < N; ++n) dev += std::pow(exact[n * d + c] - mean_v, 2);
      }
      err += std::sqrt(diff / norm) / 4.0;
      if (F == 16) non_uniform += std::sqrt(dev / norm) / 4.0;
    }
    err_by_f.push_back(err);
  }
  EXPECT_GT(non_uniform, 0.15);  // exact attention is far from averaging the values
  std::printf("favor rel err F=16 %.4f F=256 %.4f F=4096 %.4f; exact vs uniform %.4f\n", err_by_f[0],
              err_by_f[1], err_by_f[2], non_uniform);
  EXPECT_GT(err_by_f[0], err_by_f[1]);
  EXPECT_GT(err_by_f[1], err_by_f[2]);
  EXPECT_LT(err_by_f[2], 0.1) << "F=16: " << err_by_f[0] << " F=256: " << err_by_f[1];
  EXPECT_LT(err_by_f[2], non_uniform / 2);
}

// The register-tiled per-head products (d and F multiples of 8) against the GEMM calls, forward
// and backward (into a gradient that already holds values: dV is added to), both feature maps.
TEST(FavorKernel, HeadProductsMatchGemmPath) {
  uint64_t key = 400;
  for (FavorMap map : {FavorMap::Softmax, FavorMap::Relu})
    for (int64_t N : {1, 7, 50})
      for (int64_t d : {8, 16, 32})
        for (int64_t F : {8, 64}) {
          const Tensor qkv = random_tensor({2, N, 6 * d}, key++, -1.5f, 1.5f);
          const Tensor dout = random_tensor({2, N, 2 * d}, key++);
          Rng rng(key++, RngPurpose::Favor);
          const Tensor w = draw_favor_projection(F, d, rng);
          std::vector<std::vector<float>> outs, grads;
          for (bool tiles : {false, true}) {
            FavorDims dm{2, N, 2, d, F};
            dm.head_products = tiles;
            Tensor out = Tensor::empty({2, N, 2 * d}), kv = Tensor::empty({2, 2, F, d});
            Tensor ksum = Tensor::empty({2, 2, F}), den = Tensor::empty({2, 2, N});
            Tensor key_stab = Tensor::empty({2, 2});
            kernels::favor_forward(out.data(), kv.data(), ksum.data(), den.data(), key_stab.data(),
                                   qkv.data(), w.data(), dm, map, 1e-3f);
            Tensor dqkv = Tensor::full(qkv.shape(), 0.25f);
            kernels::favor_backward(dqkv.data(), dout.data(), out.data(), kv.data(), ksum.data(),
                                    den.data(), key_stab.data(), qkv.data(), w.data(), dm, map,
                                    1e-3f);
            outs.push_back(out.to_vector());
            grads.push_back(dqkv.to_vector());
          }
          for (size_t i = 0; i < outs[0].size(); ++i)
            ASSERT_NEAR(outs[1][i], outs[0][i], 2e-5 * (1 + std::fabs(outs[0][i])))
                << "map " << int(map) << " N " << N << " d " << d << " F " << F;
          for (size_t i = 0; i < grads[0].size(); ++i)
            ASSERT_NEAR(grads[1][i], grads[0][i], 1e-4 * (1 + std::fabs(grads[0][i])))
                << "map " << int(map) << " N " << N << " d " << d << " F " << F << " at " << i;
        }
}

// A fresh gradient buffer (uninitialised, here NaN) is written, not added to: same values as
// accumulating into zeros, with the row blocks and both product paths.
TEST(FavorKernel, FreshGradientIsStoredNotAdded) {
  for (bool tiles : {false, true}) {
    FavorDims dm{2, 130, 2, 8, 64};  // 130 rows: two blocks
    dm.head_products = tiles;
    const Tensor qkv = random_tensor({2, 130, 48}, 61);
    const Tensor dout = random_tensor({2, 130, 16}, 62);
    Rng rng(7, RngPurpose::Favor);
    const Tensor w = draw_favor_projection(64, 8, rng);
    Tensor out = Tensor::empty({2, 130, 16}), kv = Tensor::empty({2, 2, 64, 8});
    Tensor ksum = Tensor::empty({2, 2, 64}), den = Tensor::empty({2, 2, 130});
    Tensor key_stab = Tensor::empty({2, 2});
    kernels::favor_forward(out.data(), kv.data(), ksum.data(), den.data(), key_stab.data(),
                           qkv.data(), w.data(), dm, FavorMap::Softmax, 1e-3f);
    Tensor added = Tensor::zeros(qkv.shape());
    Tensor stored = Tensor::full(qkv.shape(), std::nanf(""));
    for (bool fresh : {false, true})
      kernels::favor_backward(fresh ? stored.data() : added.data(), dout.data(), out.data(),
                              kv.data(), ksum.data(), den.data(), key_stab.data(), qkv.data(),
                              w.data(), dm, FavorMap::Softmax, 1e-3f, fresh);
    EXPECT_EQ(stored.to_vector(), added.to_vector()) << "tiles " << tiles;
  }
}

TEST(FavorKernel, BitIdenticalForOneAndTwoThreads) {
  for (FavorMap map : {FavorMap::Softmax, FavorMap::Relu}) {
    // Big enough (8 pairs, ~2^18 MACs each) that the kernels really split over two threads.
    const FavorDims dm{2, 200, 4, 8, 32};
    const Tensor qkv = random_tensor({2, 200, 96}, 31);
    const Tensor dout = random_tensor({2, 200, 32}, 32);
    Rng rng(5, RngPurpose::Favor);
    const Tensor w = draw_favor_projection(32, 8, rng);
    std::vector<std::vector<float>> outs, grads;
    const int saved_threads = num_threads();
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Tensor out = Tensor::empty({2, 200, 32});
      Tensor kv = Tensor::empty({2, 4, 32, 8});
      Tensor ksum = Tensor::empty({2, 4, 32});
      Tensor den = Tensor::empty({2, 4, 200});
      Tensor key_stab = Tensor::empty({2, 4});
      kernels::favor_forward(out.data(), kv.data(), ksum.data(), den.data(), key_stab.data(),
                             qkv.data(), w.data(), dm, map, 1e-3f);
      Tensor dqkv = Tensor::zeros(qkv.shape());
      kernels::favor_backward(dqkv.data(), dout.data(), out.data(), kv.data(), ksum.data(), den.data(),
                              key_stab.data(), qkv.data(), w.data(), dm, map, 1e-3f);
      outs.push_back(out.to_vector());
      grads.push_back(dqkv.to_vector());
    }
    set_num_threads(saved_threads);
    EXPECT_EQ(outs[0], outs[1]);
    EXPECT_EQ(grads[0], grads[1]);
  }
}
