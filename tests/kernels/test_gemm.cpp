// kernels/gemm against a naive double-precision triple loop: odd and prime shapes, all four
// transpose combinations, alpha/beta, leading dimensions wider than the matrix, the batched form,
// the bias, both SIMD paths, and bit-identical results for 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "kernels/gemm.hpp"

using namespace vit;
using vit::kernels::gemm;

namespace {

std::vector<float> random_vec(int64_t n, uint64_t key) {
  std::vector<float> v(static_cast<size_t>(n));
  Rng rng(key, RngPurpose::Test);
  for (auto& x : v) x = 2.0f * rng.uniform() - 1.0f;
  return v;
}

// C = alpha op(A) op(B) + beta C in double, same storage conventions as gemm.
std::vector<double> reference(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha,
                              const std::vector<float>& A, int64_t lda, const std::vector<float>& B,
                              int64_t ldb, double beta, const std::vector<float>& C, int64_t ldc) {
  std::vector<double> out(C.begin(), C.end());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0.0;
      for (int64_t p = 0; p < K; ++p) {
        const double a = ta ? A[p * lda + i] : A[i * lda + p];
        const double b = tb ? B[j * ldb + p] : B[p * ldb + j];
        s += a * b;
      }
      const double c0 = beta == 0.0 ? 0.0 : beta * out[i * ldc + j];
      out[i * ldc + j] = alpha * s + c0;
    }
  return out;
}

struct Case {
  int64_t M, N, K;
};

// {13, 40, 4200}: long K with a small C takes the fixed K-chunk (split-K) path.
const Case kCases[] = {{1, 1, 1},   {1, 257, 3},  {127, 1, 64}, {13, 17, 19}, {5, 1, 7},
                       {1, 33, 300}, {31, 48, 16}, {64, 64, 64}, {97, 130, 513}, {6, 16, 1},
                       {13, 40, 4200}};

// Runs every case and transpose combination with padded leading dimensions; returns the
// largest |got - ref| / (1 + |ref|) seen.
double max_error_all_cases(float alpha, float beta) {
  double worst = 0.0;
  uint64_t key = 1;
  for (const Case& cs : kCases)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const int64_t ar = ta ? cs.K : cs.M, ac = ta ? cs.M : cs.K;
      const int64_t br = tb ? cs.N : cs.K, bc = tb ? cs.K : cs.N;
      const int64_t lda = ac + 3, ldb = bc + 1, ldc = cs.N + 5;
      auto A = random_vec(ar * lda, key++);
      auto B = random_vec(br * ldb, key++);
      auto C = random_vec(cs.M * ldc, key++);
      auto ref = reference(ta, tb, cs.M, cs.N, cs.K, alpha, A, lda, B, ldb, beta, C, ldc);
      gemm(ta, tb, cs.M, cs.N, cs.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
      for (int64_t i = 0; i < cs.M; ++i)
        for (int64_t j = 0; j < ldc; ++j) {
          const double r = ref[i * ldc + j], g = C[i * ldc + j];
          const double e = std::abs(g - r) / (1.0 + std::abs(r));
          if (j >= cs.N) {
            EXPECT_EQ(g, r) << "padding column written";
          }
          if (e > worst) worst = e;
          if (e > 1e-4)
            ADD_FAILURE() << "M" << cs.M << " N" << cs.N << " K" << cs.K << " ta" << ta << " tb"
                          << tb << " at (" << i << "," << j << "): " << g << " vs " << r;
          if (e > 1e-4) return e;
        }
    }
  return worst;
}

class SimdPath : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (std::string(GetParam()) == "portable") setenv("VIT_SIMD", "portable", 1);
    else unsetenv("VIT_SIMD");
  }
  void TearDown() override { unsetenv("VIT_SIMD"); }
};

TEST_P(SimdPath, ReportsPath) {
  const std::string path = kernels::gemm_simd_path();
  if (std::string(GetParam()) == "portable") EXPECT_EQ(path, "portable");
  else EXPECT_TRUE(path == "avx2-fma" || path == "portable") << path;
}

TEST_P(SimdPath, MatchesDoubleReference) {
  EXPECT_LT(max_error_all_cases(1.0f, 0.0f), 1e-4);
  EXPECT_LT(max_error_all_cases(-0.75f, 1.5f), 1e-4);
  EXPECT_LT(max_error_all_cases(2.0f, 1.0f), 1e-4);
}

// Packed panels and direct (unpacked) operand reads, forced either way: same reference error,
// and the same bits as each other (only where the loads come from differs).
TEST_P(SimdPath, PackedAndDirectReadsAgreeBitwise) {
  using kernels::detail::Packing;
  for (Packing p : {Packing::Always, Packing::Never}) {
    kernels::detail::set_packing(p);
    EXPECT_LT(max_error_all_cases(-0.75f, 1.5f), 1e-4);
  }
  for (const Case& cs : kCases)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const int64_t lda = (ta ? cs.M : cs.K) + 2, ldb = (tb ? cs.K : cs.N) + 1;
      auto A = random_vec((ta ? cs.K : cs.M) * lda, 31), B = random_vec((tb ? cs.N : cs.K) * ldb, 32);
      std::vector<float> packed(cs.M * cs.N), direct(cs.M * cs.N);
      kernels::detail::set_packing(Packing::Always);
      gemm(ta, tb, cs.M, cs.N, cs.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, packed.data(), cs.N);
      kernels::detail::set_packing(Packing::Never);
      gemm(ta, tb, cs.M, cs.N, cs.K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, direct.data(), cs.N);
      EXPECT_EQ(packed, direct) << "M" << cs.M << " N" << cs.N << " K" << cs.K << " t" << t;
    }
  kernels::detail::set_packing(Packing::Auto);
}

TEST_P(SimdPath, BetaZeroIgnoresNanInC) {
  const int64_t M = 7, N = 19, K = 5;
  auto A = random_vec(M * K, 11), B = random_vec(K * N, 12);
  std::vector<float> C(M * N, std::nanf(""));
  gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
  for (float v : C) EXPECT_TRUE(std::isfinite(v));
}

TEST_P(SimdPath, KZeroScalesC) {
  std::vector<float> C = {1, 2, 3, 4};
  gemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.5f, 1, 1.5f, 2}));
}

TEST_P(SimdPath, BatchedMatchesPerItemReference) {
  // Many small items (one per thread) and a few big ones (threads inside each).
  for (const Case cs : {Case{5, 7, 3}, Case{50, 50, 16}, Case{130, 70, 90}})
    for (int64_t batch : {int64_t{1}, int64_t{3}, int64_t{37}}) {
      const bool ta = batch == 3, tb = cs.M == 50;
      const int64_t sa = cs.M * cs.K + 2, sb = cs.K * cs.N + 1, sc = cs.M * cs.N + 4;
      const int64_t lda = ta ? cs.M : cs.K, ldb = tb ? cs.K : cs.N;
      auto A = random_vec(sa * batch, 21), B = random_vec(sb * batch, 22);
      auto C = random_vec(sc * batch, 23);
      const auto C0 = C;
      kernels::gemm_batched(ta, tb, cs.M, cs.N, cs.K, 0.5f, A.data(), lda, sa, B.data(), ldb, sb,
                            -1.0f, C.data(), cs.N, sc, batch);
      for (int64_t b = 0; b < batch; ++b) {
        std::vector<float> Ab(A.begin() + b * sa, A.begin() + (b + 1) * sa);
        std::vector<float> Bb(B.begin() + b * sb, B.begin() + (b + 1) * sb);
        std::vector<float> Cb(C0.begin() + b * sc, C0.begin() + b * sc + cs.M * cs.N);
        auto ref = reference(ta, tb, cs.M, cs.N, cs.K, 0.5, Ab, lda, Bb, ldb, -1.0, Cb, cs.N);
        for (int64_t i = 0; i < cs.M * cs.N; ++i)
          ASSERT_NEAR(C[b * sc + i], ref[i], 1e-4 * (1.0 + std::abs(ref[i])))
              << "batch " << batch << " item " << b << " element " << i;
        for (int64_t i = cs.M * cs.N; i < sc; ++i) ASSERT_EQ(C[b * sc + i], C0[b * sc + i]);
      }
    }
}

TEST_P(SimdPath, BiasAddedAfterAlphaAndBeta) {
  // Edge tiles on both axes, several K blocks (the bias must be added once), packed and direct;
  // 1400 x 100 x 300: a C taller than K, its K blocks run inside each row block.
  using kernels::detail::Packing;
  for (Packing p : {Packing::Auto, Packing::Always, Packing::Never})
    for (const Case& cs :
         {Case{37, 29, 23}, Case{13, 50, 600}, Case{130, 7, 5}, Case{1400, 100, 300}}) {
      kernels::detail::set_packing(p);
      const int64_t M = cs.M, N = cs.N, K = cs.K;
      auto A = random_vec(M * K, 31), B = random_vec(N * K, 32), bias = random_vec(N, 33);
      std::vector<float> C = random_vec(M * N, 34);
      auto ref = reference(false, true, M, N, K, 0.5, A, K, B, K, -2.0, C, N);
      kernels::gemm_bias(false, true, M, N, K, 0.5f, A.data(), K, B.data(), K, -2.0f, C.data(), N,
                         bias.data());
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          const double h = ref[i * N + j] + bias[j];
          ASSERT_NEAR(C[i * N + j], h, 1e-4 * (1 + std::abs(h))) << i << "," << j << " K " << K;
        }
    }
  kernels::detail::set_packing(Packing::Auto);
}

TEST_P(SimdPath, ResidualAddedAfterBias) {
  // C = alpha A B^T + beta C + bias + R with R's row stride wider than N: edge tiles on both axes,
  // several K blocks, the K-chunk path (13 x 40 x 4200), K blocks inside row blocks (1400 x 100 x
  // 300), packed and direct.
  using kernels::detail::Packing;
  for (Packing p : {Packing::Auto, Packing::Always, Packing::Never})
    for (const Case& cs : {Case{37, 29, 23}, Case{13, 50, 600}, Case{130, 7, 5}, Case{13, 40, 4200},
                           Case{1400, 100, 300}}) {
      kernels::detail::set_packing(p);
      const int64_t M = cs.M, N = cs.N, K = cs.K, ldr = N + 3;
      auto A = random_vec(M * K, 41), B = random_vec(N * K, 42), bias = random_vec(N, 43);
      auto R = random_vec(M * ldr, 44);
      std::vector<float> C = random_vec(M * N, 45);
      auto ref = reference(false, true, M, N, K, 0.5, A, K, B, K, -2.0, C, N);
      kernels::gemm_bias(false, true, M, N, K, 0.5f, A.data(), K, B.data(), K, -2.0f, C.data(), N,
                         bias.data(), R.data(), ldr);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          const double h = ref[i * N + j] + bias[j] + R[i * ldr + j];
          ASSERT_NEAR(C[i * N + j], h, 1e-4 * (1 + std::abs(h))) << i << "," << j << " K " << K;
        }
      // The same bits as adding R to the bias-only product afterwards (out = y + r, as add does).
      std::vector<float> Y = random_vec(M * N, 45);
      kernels::gemm_bias(false, true, M, N, K, 0.5f, A.data(), K, B.data(), K, -2.0f, Y.data(), N,
                         bias.data());
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) ASSERT_EQ(C[i * N + j], R[i * ldr + j] + Y[i * N + j]);
    }
  kernels::detail::set_packing(Packing::Auto);
}

TEST_P(SimdPath, ScaleMultipliesAfterAlphaAndBeta) {
  // C = (alpha A B + beta C) * S with S's row stride wider than N, on the shapes of
  // ResidualAddedAfterBias (edge tiles, K blocks, K chunks, K blocks inside row blocks) and K = 0,
  // packed and direct: the same bits as the plain product multiplied afterwards.
  using kernels::detail::Packing;
  for (Packing p : {Packing::Auto, Packing::Always, Packing::Never})
    for (const Case& cs : {Case{37, 29, 23}, Case{13, 50, 600}, Case{130, 7, 5}, Case{13, 40, 4200},
                           Case{1400, 100, 300}, Case{5, 9, 0}}) {
      kernels::detail::set_packing(p);
      const int64_t M = cs.M, N = cs.N, K = cs.K, lds = N + 5;
      auto A = random_vec(M * K, 51), B = random_vec(K * N, 52), S = random_vec(M * lds, 53);
      std::vector<float> C = random_vec(M * N, 54), Y = C;
      kernels::gemm_scaled(false, false, M, N, K, 0.5f, A.data(), K, B.data(), N, -2.0f, C.data(),
                           N, S.data(), lds);
      kernels::gemm(false, false, M, N, K, 0.5f, A.data(), K, B.data(), N, -2.0f, Y.data(), N);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j)
          ASSERT_EQ(C[i * N + j], Y[i * N + j] * S[i * lds + j]) << i << "," << j << " K " << K;
    }
  kernels::detail::set_packing(Packing::Auto);
}

INSTANTIATE_TEST_SUITE_P(Gemm, SimdPath, ::testing::Values("default", "portable"));

// Same inputs with 1, 2 and 5 threads must give the same bits (shapes that take every split:
// rows, columns, several K blocks, several N blocks, fixed K chunks; 1400 x 100 x 300 runs its K
// blocks inside each row block on 1 and 2 threads, outside them on 5, whose C parts are shorter
// than K).
TEST(Gemm, BitIdenticalForOneAndTwoThreads) {
  const Case cases[] = {{300, 200, 600}, {64, 192, 6400}, {6400, 64, 64}, {20, 3100, 70},
                        {1400, 100, 300}};
  for (const Case& cs : cases)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      auto A = random_vec(cs.M * cs.K, 41), B = random_vec(cs.K * cs.N, 42);
      const int64_t lda = ta ? cs.M : cs.K, ldb = tb ? cs.K : cs.N;
      std::vector<float> c1 = random_vec(cs.M * cs.N, 43), c2 = c1, c5 = c1;
      set_num_threads(1);
      gemm(ta, tb, cs.M, cs.N, cs.K, 1.0f, A.data(), lda, B.data(), ldb, 0.5f, c1.data(), cs.N);
      set_num_threads(2);
      gemm(ta, tb, cs.M, cs.N, cs.K, 1.0f, A.data(), lda, B.data(), ldb, 0.5f, c2.data(), cs.N);
      set_num_threads(5);  // more threads than split-K chunks: each chunk's C split as a grid
      gemm(ta, tb, cs.M, cs.N, cs.K, 1.0f, A.data(), lda, B.data(), ldb, 0.5f, c5.data(), cs.N);
      set_num_threads(2);
      ASSERT_EQ(c1, c2) << "M" << cs.M << " N" << cs.N << " K" << cs.K << " t" << t;
      ASSERT_EQ(c1, c5) << "M" << cs.M << " N" << cs.N << " K" << cs.K << " t" << t;
    }
  // Batched: per-item and split-inside paths.
  auto A = random_vec(40 * 50 * 16, 51), B = random_vec(40 * 16 * 50, 52);
  std::vector<float> c1(40 * 50 * 50), c2(40 * 50 * 50);
  set_num_threads(1);
  kernels::gemm_batched(false, true, 50, 50, 16, 1.0f, A.data(), 16, 800, B.data(), 16, 800, 0.0f,
                        c1.data(), 50, 2500, 40);
  set_num_threads(2);
  kernels::gemm_batched(false, true, 50, 50, 16, 1.0f, A.data(), 16, 800, B.data(), 16, 800, 0.0f,
                        c2.data(), 50, 2500, 40);
  EXPECT_EQ(c1, c2);
}

}  // namespace
