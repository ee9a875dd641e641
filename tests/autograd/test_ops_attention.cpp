// attention / qkv_attention / class_attention / qkv_class_attention / favor_attention ops:
// finite-difference gradchecks (with and without dropout, both FAVOR+ feature maps), the fused
// ops against their compositions, the class-token ops against row 0 of the full ones, shape errors,
// and the memory bound at N = 4096 tokens (no N x N matrix).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <tuple>

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "kernels/favor.hpp"

using namespace vit;

namespace {

GradcheckResult check_attention(const Shape& qkv_shape, int64_t heads, float p, uint64_t key) {
  Var qkv(random_tensor(qkv_shape, key), true);
  return gradcheck([heads, p](const std::vector<Var>& in) { return attention(in[0], heads, p, 77); },
                   {qkv});
}

// Smallest |w_f . x'| over every query and key row: the ReLU map's kinks. Finite differences
// need the inputs at least one step away from them.
double min_relu_margin(const Tensor& qkv, const Tensor& w, int64_t heads) {
  const int64_t D = qkv.size(2) / 3, d = D / heads, F = w.size(0);
  const double xs = std::pow(double(d), -0.25);
  double margin = 1e300;
  for (int64_t row = 0; row < qkv.size(0) * qkv.size(1); ++row)
    for (int64_t part = 0; part < 2; ++part)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t f = 0; f < F; ++f) {
          double z = 0.0;
          for (int64_t c = 0; c < d; ++c) z += double(w[f * d + c]) * qkv[row * 3 * D + part * D + h * d + c] * xs;
          margin = std::min(margin, std::fabs(z));
        }
  return margin;
}

int64_t max_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

TEST(AttentionOp, GradcheckSmallShapes) {
  for (auto [shape, heads] : {std::pair<Shape, int64_t>{{2, 5, 24}, 2}, {{1, 1, 12}, 1},
                              {{1, 7, 39}, 1}, {{2, 3, 36}, 3}}) {
    const GradcheckResult r = check_attention(shape, heads, 0.0f, 3);
    EXPECT_TRUE(r.ok) << detail::concat(shape) << "\n" << r.report;
  }
}

TEST(AttentionOp, GradcheckHeadKernelShapes) {
  // d = 8 and 16: the in-cache head kernel where the CPU has AVX2 + FMA (N = 5, 9, 13: padded
  // score rows), the GEMM path elsewhere.
  for (auto [shape, heads] : {std::pair<Shape, int64_t>{{2, 5, 48}, 2}, {{1, 9, 24}, 1},
                              {{1, 13, 48}, 1}}) {
    const GradcheckResult r = check_attention(shape, heads, 0.0f, 6);
    EXPECT_TRUE(r.ok) << detail::concat(shape) << "\n" << r.report;
  }
}

TEST(AttentionOp, GradcheckAcrossTiles) {
  // N = 70 crosses the 32-query and 64-key tiles; partial tiles on both sides.
  const GradcheckResult r = check_attention({1, 70, 6}, 1, 0.0f, 4);
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(AttentionOp, GradcheckWithDropoutUsesTheForwardMask) {
  // Forward and backward must re-create one mask from (key, b, h, i, j); a different mask in
  // backward would make the analytic gradient disagree with the finite differences.
  for (auto [shape, heads] : {std::pair<Shape, int64_t>{{2, 6, 24}, 2}, {{1, 70, 6}, 1}}) {
    const GradcheckResult r = check_attention(shape, heads, 0.3f, 5);
    EXPECT_TRUE(r.ok) << detail::concat(shape) << "\n" << r.report;
  }
}

TEST(QkvAttentionOp, Gradcheck) {
  // d = 8 with 3D = 48: the in-cache path where the CPU has AVX2 + FMA. B = 3 samples in 3
  // chunks; N = 50 puts 2 samples in a group, N = 5 all of them. Without bias too.
  for (auto [B, N, bias] : {std::tuple<int64_t, int64_t, bool>{3, 5, true}, {3, 50, true},
                            {2, 9, false}}) {
    Var x(random_tensor({B, N, 12}, 21), true);
    Var w(random_tensor({48, 12}, 22), true);
    Var b = bias ? Var(random_tensor({48}, 23), true) : Var();
    std::vector<Var> in{x, w};
    if (bias) in.push_back(b);
    const GradcheckResult r = gradcheck([bias](const std::vector<Var>& v) {
      return qkv_attention(v[0], v[1], bias ? v[2] : Var(), 2);
    }, in);
    EXPECT_TRUE(r.ok) << "B " << B << " N " << N << "\n" << r.report;
  }
}

TEST(QkvAttentionOp, MatchesAttentionOfLinear) {
  // The same forward bits, and the same dx bits (each row's product is the same sum); w's and
  // b's gradients are summed in a different order (per chunk of samples), so agree to rounding.
  // B = 20 > 16 chunks (1 or 2 samples each); N = 50 and 9 give groups of 2 and 14 samples;
  // with N = 9 a second pass adds onto the gradients of the first (x's is not fresh).
  for (auto [N, heads] : {std::pair<int64_t, int64_t>{50, 4}, {9, 2}}) {
    const int64_t B = 20, C = 32, D = 64;
    const Tensor xv = random_tensor({B, N, C}, 31), wv = random_tensor({3 * D, C}, 32);
    const Tensor bv = random_tensor({3 * D}, 33), seed = random_tensor({B, N, D}, 34);
    auto run = [&, N = N, heads = heads](bool fused) {
      Var x(xv.clone(), true), w(wv.clone(), true), b(bv.clone(), true);
      std::vector<Tensor> got;
      for (int pass = 0; pass < (N == 9 ? 2 : 1); ++pass) {
        Var y = fused ? qkv_attention(x, w, b, heads) : attention(linear(x, w, b), heads);
        backward(y, seed);
        got = {y.value(), x.grad(), w.grad(), b.grad()};
      }
      return got;
    };
    const std::vector<Tensor> a = run(true), e = run(false);
    for (int t = 0; t < 2; ++t)  // y, dx
      EXPECT_EQ(0, std::memcmp(a[t].data(), e[t].data(), a[t].numel() * sizeof(float))) << t;
    for (int t = 2; t < 4; ++t) {  // dw, db
      double worst = 0.0;
      for (int64_t i = 0; i < a[t].numel(); ++i)
        worst = std::max(worst, std::fabs(double(a[t][i]) - e[t][i]) / (1.0 + std::fabs(e[t][i])));
      EXPECT_LT(worst, 1e-5) << "N " << N << " tensor " << t;
      EXPECT_GT(std::fabs(a[t][0]), 0.0f);
    }
  }
}

TEST(ClassAttentionOp, Gradcheck) {
  // d = 12, 4, 13 (lane-sum tails), 8 and 16; one token; two samples' rows in one dqkv.
  for (auto [shape, heads] : {std::pair<Shape, int64_t>{{2, 5, 72}, 2}, {{1, 1, 12}, 1},
                              {{1, 7, 39}, 1}, {{2, 9, 48}, 2}, {{1, 6, 48}, 1}}) {
    Var qkv(random_tensor(shape, 41), true);
    const GradcheckResult r = gradcheck(
        [heads = heads](const std::vector<Var>& in) { return class_attention(in[0], heads); }, {qkv});
    EXPECT_TRUE(r.ok) << detail::concat(shape) << "\n" << r.report;
  }
}

TEST(ClassAttentionOp, MatchesRowZeroOfAttention) {
  // Row 0 of the full attention (the in-cache head kernel for d = 16 and 8, the GEMM path for
  // d = 12) and its qkv gradient, which is 0 in the q columns of rows 1..N-1 there too. A second
  // pass adds onto the first's gradient (dqkv not fresh).
  for (auto [B, N, heads, D] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{3, 50, 4, 64},
                                {2, 9, 2, 16}, {2, 17, 3, 36}}) {
    const Tensor qv = random_tensor({B, N, 3 * D}, 51, -2.0f, 2.0f), seed = random_tensor({B, D}, 52);
    auto run = [&, heads = heads](bool cls) {
      Var qkv(qv.clone(), true);
      Var y;
      for (int pass = 0; pass < 2; ++pass) {
        y = cls ? class_attention(qkv, heads) : select_token(attention(qkv, heads), 0);
        backward(y, seed);
      }
      return std::pair<Tensor, Tensor>{y.value(), qkv.grad()};
    };
    const auto [yc, gc] = run(true);
    const auto [ye, ge] = run(false);
    ASSERT_EQ(yc.shape(), ye.shape());
    for (auto [a, e] : {std::pair<const Tensor*, const Tensor*>{&yc, &ye}, {&gc, &ge}}) {
      double worst = 0.0, biggest = 0.0;
      for (int64_t i = 0; i < a->numel(); ++i) {
        worst = std::max(worst, std::fabs(double((*a)[i]) - (*e)[i]) / (1.0 + std::fabs((*e)[i])));
        biggest = std::max(biggest, std::fabs(double((*e)[i])));
      }
      EXPECT_LT(worst, 2e-6) << "N " << N;
      EXPECT_GT(biggest, 0.1) << "N " << N;
    }
    const int64_t D3 = 3 * D;
    for (int64_t i = 0; i < B * N * D3; ++i)
      if ((i / D3) % N > 0 && i % D3 < D) {
        ASSERT_EQ(gc[i], 0.0f) << i;
      }
  }
}

TEST(QkvClassAttentionOp, GradcheckAndMatchesClassAttentionOfLinear) {
  // The same values (each output element is the same sum over C), gradients to rounding; with
  // and without bias; a second pass adds onto the first's gradients (x's not fresh).
  for (bool bias : {true, false}) {
    const int64_t B = 3, N = 9, C = 12, D = 16, heads = 2;
    Var x(random_tensor({B, N, C}, 71), true);
    Var w(random_tensor({3 * D, C}, 72), true);
    Var b = bias ? Var(random_tensor({3 * D}, 73), true) : Var();
    std::vector<Var> in{x, w};
    if (bias) in.push_back(b);
    const GradcheckResult r = gradcheck([bias](const std::vector<Var>& v) {
      return qkv_class_attention(v[0], v[1], bias ? v[2] : Var(), 2);
    }, in);
    EXPECT_TRUE(r.ok) << "bias " << bias << "\n" << r.report;

    const Tensor seed = random_tensor({B, D}, 74);
    auto run = [&](bool fused) {
      Var xi(x.value().clone(), true), wi(w.value().clone(), true);
      Var bi = bias ? Var(b.value().clone(), true) : Var();
      std::vector<Tensor> got;
      for (int pass = 0; pass < 2; ++pass) {
        Var y = fused ? qkv_class_attention(xi, wi, bi, heads)
                      : class_attention(linear(xi, wi, bi), heads);
        backward(y, seed);
        got = {y.value(), xi.grad(), wi.grad()};
        if (bias) got.push_back(bi.grad());
      }
      return got;
    };
    const std::vector<Tensor> a = run(true), e = run(false);
    EXPECT_EQ(0, std::memcmp(a[0].data(), e[0].data(), a[0].numel() * sizeof(float)));
    for (size_t t = 1; t < a.size(); ++t) {
      double worst = 0.0, biggest = 0.0;
      for (int64_t i = 0; i < a[t].numel(); ++i) {
        worst = std::max(worst, std::fabs(double(a[t][i]) - e[t][i]) / (1.0 + std::fabs(e[t][i])));
        biggest = std::max(biggest, std::fabs(double(e[t][i])));
      }
      EXPECT_LT(worst, 1e-6) << "bias " << bias << " tensor " << t;
      EXPECT_GT(biggest, 0.1) << "bias " << bias << " tensor " << t;
    }
  }
  Var x(Tensor::zeros({2, 5, 8}), true);
  EXPECT_THROW(qkv_class_attention(x, Var(Tensor::zeros({48, 7}), true), Var(), 2), Error);
  EXPECT_THROW(qkv_class_attention(x, Var(Tensor::zeros({48, 8}), true), Var(Tensor::zeros({47})), 2),
               Error);
  EXPECT_THROW(qkv_class_attention(x, Var(Tensor::zeros({48, 8}), true), Var(), 5), Error);
  EXPECT_THROW(qkv_class_attention(Var(Tensor::zeros({2, 0, 8})), Var(Tensor::zeros({48, 8})), Var(), 2),
               Error);
}

TEST(FavorOp, ClassRowMatchesRowZeroOfTheFullOpAndGradchecks) {
  // Both maps, the head products (d = 8, F = 16) and the GEMM path (d = 6, F = 7), two blocks of
  // key rows (N = 130 > 120 at F = 16); a second pass adds onto the first's gradient. Row 0's
  // output is the same computation either way; the gradients agree to rounding.
  using Case = std::tuple<int64_t, int64_t, int64_t, FavorKernel>;  // N, D, F, map
  for (auto [N, D, F, kernel] : {Case{9, 16, 16, FavorKernel::Softmax},
                                 Case{130, 16, 16, FavorKernel::Relu},
                                 Case{7, 12, 7, FavorKernel::Softmax}}) {
    const int64_t B = 3, heads = 2, d = D / heads;
    Rng rng(F, RngPurpose::Favor);
    const Tensor w = draw_favor_projection(F, d, rng);
    const Tensor qv = random_tensor({B, N, 3 * D}, 61), seed = random_tensor({B, D}, 62);
    auto run = [&, N = N, kernel = kernel](bool cls) {
      Var qkv(qv.clone(), true);
      Var y;
      for (int pass = 0; pass < 2; ++pass) {
        y = cls ? favor_class_attention(qkv, heads, w, kernel)
                : select_token(favor_attention(qkv, heads, w, kernel), 0);
        backward(y, seed);
      }
      return std::pair<Tensor, Tensor>{y.value(), qkv.grad()};
    };
    const auto [yc, gc] = run(true);
    const auto [ye, ge] = run(false);
    ASSERT_EQ(yc.shape(), ye.shape());
    EXPECT_EQ(0, std::memcmp(yc.data(), ye.data(), yc.numel() * sizeof(float))) << "N " << N;
    double worst = 0.0, biggest = 0.0;
    for (int64_t i = 0; i < ge.numel(); ++i) {
      worst = std::max(worst, std::fabs(double(gc[i]) - ge[i]) / (1.0 + std::fabs(ge[i])));
      biggest = std::max(biggest, std::fabs(double(ge[i])));
    }
    EXPECT_LT(worst, 1e-6) << "N " << N;
    EXPECT_GT(biggest, 0.01) << "N " << N;
    for (int64_t i = 0; i < B * N * 3 * D; ++i)
      if ((i / (3 * D)) % N > 0 && i % (3 * D) < D) {
        ASSERT_EQ(gc[i], 0.0f) << i;
      }
  }
  Var qkv(random_tensor({2, 6, 24}, 63), true);
  Rng rng(8, RngPurpose::Favor);
  const Tensor w = draw_favor_projection(8, 4, rng);
  const GradcheckResult r = gradcheck([&w](const std::vector<Var>& in) {
    return favor_class_attention(in[0], 2, w, FavorKernel::Softmax, 1e-6f);
  }, {qkv});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(AttentionOp, RejectsBadShapes) {
  Var qkv(Tensor::zeros({2, 5, 25}), true);
  EXPECT_THROW(attention(qkv, 2), Error);                         // 25 not 3 * D
  EXPECT_THROW(attention(Var(Tensor::zeros({2, 5, 24})), 5), Error);  // D = 8 not divisible by 5
  EXPECT_THROW(attention(Var(Tensor::zeros({10, 24})), 2), Error);    // not [B, N, 3D]
  EXPECT_THROW(attention(Var(Tensor::zeros({1, 2, 24})), 2, 1.0f), Error);
  EXPECT_THROW(class_attention(qkv, 2), Error);                        // 25 not 3 * D
  EXPECT_THROW(class_attention(Var(Tensor::zeros({2, 5, 24})), 5), Error);
  EXPECT_THROW(class_attention(Var(Tensor::zeros({10, 24})), 2), Error);
  EXPECT_THROW(class_attention(Var(Tensor::zeros({2, 0, 24})), 2), Error);  // no tokens
  EXPECT_THROW(favor_attention(Var(Tensor::zeros({1, 2, 24})), 2, Tensor::zeros({8, 3}),
                               FavorKernel::Softmax),
               Error);  // projection width 3 != d = 4
  Var x(Tensor::zeros({2, 5, 8}), true);
  EXPECT_THROW(qkv_attention(x, Var(Tensor::zeros({48, 7}), true), Var(), 2), Error);  // C 8 != 7
  EXPECT_THROW(qkv_attention(x, Var(Tensor::zeros({48, 8}), true), Var(Tensor::zeros({47})), 2),
               Error);  // bias
  EXPECT_THROW(qkv_attention(x, Var(Tensor::zeros({48, 8}), true), Var(), 5), Error);  // 16 / 5
}

TEST(FavorOp, GradcheckSoftmaxKernel) {
  for (int64_t F : {3, 8}) {
    Var qkv(random_tensor({2, 6, 24}, 8 + F), true);
    Rng rng(F, RngPurpose::Favor);
    const Tensor w = draw_favor_projection(F, 4, rng);
    auto f = [&w](const std::vector<Var>& in) {
      return favor_attention(in[0], 2, w, FavorKernel::Softmax, 1e-6f);
    };
    const GradcheckResult r = gradcheck(f, {qkv});
    EXPECT_TRUE(r.ok) << "F " << F << "\n" << r.report;
  }
}

TEST(FavorOp, GradcheckSoftmaxKernelHeadProducts) {
  // d = 8 and F a multiple of 8: the register-tiled per-head products (kernels/head_products)
  // where the CPU has AVX2 + FMA, the GEMM calls elsewhere.
  for (int64_t F : {8, 16}) {
    Var qkv(random_tensor({2, 5, 48}, 30 + F), true);
    Rng rng(F, RngPurpose::Favor);
    const Tensor w = draw_favor_projection(F, 8, rng);
    auto f = [&w](const std::vector<Var>& in) {
      return favor_attention(in[0], 2, w, FavorKernel::Softmax, 1e-6f);
    };
    const GradcheckResult r = gradcheck(f, {qkv});
    EXPECT_TRUE(r.ok) << "F " << F << "\n" << r.report;
  }
}

TEST(FavorOp, GradcheckSoftmaxKernelSeveralRowBlocks) {
  // F = 256: rows go in blocks of 24 (kernels/favor.cpp), so 30 tokens make a full and a partial
  // block; kv, ksum and their gradients accumulate across blocks. d = 8: head products (AVX2 + FMA
  // CPUs), d = 4: GEMM calls.
  for (int64_t d : {4, 8}) {
    Var qkv(random_tensor({1, 30, 6 * d}, 50 + d), true);
    Rng rng(d, RngPurpose::Favor);
    const Tensor w = draw_favor_projection(256, d, rng);
    auto f = [&w](const std::vector<Var>& in) {
      return favor_attention(in[0], 2, w, FavorKernel::Softmax, 1e-6f);
    };
    const GradcheckResult r = gradcheck(f, {qkv});
    EXPECT_TRUE(r.ok) << "d " << d << "\n" << r.report;
  }
}

TEST(FavorOp, GradcheckReluKernel) {
  // Pick the first seeded input whose features all sit >= 0.04 from the ReLU kink (a step of
  // 1e-2 moves w.x' by at most ~0.02 here), so the check never straddles a kink.
  const Shape shape{1, 5, 18};
  Rng rng(9, RngPurpose::Favor);
  const Tensor w = draw_favor_projection(4, 3, rng);
  uint64_t key = 100;
  Tensor x = random_tensor(shape, key);
  while (min_relu_margin(x, w, 2) < 0.04 && key < 2000) x = random_tensor(shape, ++key);
  ASSERT_GE(min_relu_margin(x, w, 2), 0.04);
  Var qkv(x, true);
  auto f = [&w](const std::vector<Var>& in) {
    return favor_attention(in[0], 2, w, FavorKernel::Relu, 1e-3f);
  };
  const GradcheckResult r = gradcheck(f, {qkv});
  EXPECT_TRUE(r.ok) << r.report;
}

TEST(FavorOp, ProjectionRedrawAfterForwardDoesNotChangeGradient) {
  Rng rng(1, RngPurpose::Favor);
  Tensor w = draw_favor_projection(6, 4, rng);
  const Tensor w0 = w.clone();
  const Tensor seed = random_tensor({1, 4, 8}, 3);
  Var a(random_tensor({1, 4, 24}, 2), true);
  backward(favor_attention(a, 2, w, FavorKernel::Softmax), seed);
  const std::vector<float> expected = a.grad().to_vector();
  a.zero_grad();
  Var y = favor_attention(a, 2, w, FavorKernel::Softmax);
  Rng rng2(2, RngPurpose::Favor);
  w.copy_from(draw_favor_projection(6, 4, rng2));  // an in-place redraw between the passes
  backward(y, seed);
  EXPECT_EQ(a.grad().to_vector(), expected);
  w.copy_from(w0);
}

// N = 4096 tokens, B = 1, D = 64, 4 heads: an N x N x H float matrix would be 256 MiB. Tensor memory
// (allocator peak) and RSS growth must both stay far below that for forward + backward.
TEST(AttentionMemory, LongSequenceForwardBackwardStaysSmall) {
  const int64_t N = 4096, D = 64, H = 4;
  const Tensor x = random_tensor({1, N, 3 * D}, 41);
  const Tensor seed = random_tensor({1, N, D}, 42);
  Rng rng(7, RngPurpose::Favor);
  const Tensor w = draw_favor_projection(favor_default_features(D / H), D / H, rng);
  for (int kind = 0; kind < 2; ++kind) {
    allocator::release_cached();
    allocator::reset_peak();
    const int64_t base_bytes = allocator::stats().bytes_in_use;
    const int64_t rss_before = max_rss_kib();
    const auto t0 = std::chrono::steady_clock::now();
    {
      Var qkv(x.clone(), true);
      Var y = kind == 0 ? attention(qkv, H) : favor_attention(qkv, H, w, FavorKernel::Softmax);
      backward(y, seed);
      ASSERT_TRUE(qkv.has_grad());
      double norm = 0.0;
      for (int64_t i = 0; i < qkv.numel(); ++i) norm += std::fabs(qkv.grad()[i]);
      EXPECT_TRUE(std::isfinite(norm) && norm > 0.0);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double peak_mib = double(allocator::stats().peak_bytes_in_use - base_bytes) / (1 << 20);
    const double rss_mib = double(max_rss_kib() - rss_before) / 1024.0;
    std::printf("%s N=%lld: fwd+bwd %.2f s, tensor peak %.1f MiB, max-RSS growth %.1f MiB\n",
                kind == 0 ? "softmax" : "favor", static_cast<long long>(N), secs, peak_mib, rss_mib);
    EXPECT_LT(peak_mib, 32.0);
    EXPECT_LT(rss_mib, 64.0);
  }
}
