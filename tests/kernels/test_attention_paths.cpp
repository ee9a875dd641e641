// The attention paths (dense: query-row blocks against all keys by GEMM; flash: tiles with an
// online softmax) against each other and against a double-precision forward; the flash path is
// forced through AttentionDims::dense_max_tokens = 0, several row blocks through row_block.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "core/parallel.hpp"
#include "kernels/attention.hpp"

using namespace vit;
using kernels::AttentionDims;

namespace {

struct Result {
  std::vector<float> out, lse, dqkv;
};

// keep_probs: the forward hands its probabilities to backward instead of backward recomputing.
Result run(const AttentionDims& dm, const Tensor& qkv, const Tensor& dout, float p,
           bool keep_probs = false) {
  const int64_t D = dm.heads * dm.head_dim;
  Tensor out = Tensor::empty({dm.batch, dm.tokens, D});
  Tensor lse = Tensor::empty({dm.batch, dm.heads, dm.tokens});
  Tensor probs = Tensor::empty({kernels::attention_probs_floats(dm, {p, 5})});
  float* pp = keep_probs ? probs.data() : nullptr;
  kernels::attention_forward(out.data(), lse.data(), qkv.data(), dm, {p, 5}, pp);
  Tensor dqkv = Tensor::zeros(qkv.shape());
  kernels::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), dm,
                              {p, 5}, pp);
  return {out.to_vector(), lse.to_vector(), dqkv.to_vector()};
}

// Forward in double for one element set: out [B, N, D].
std::vector<double> reference(const Tensor& qkv, const AttentionDims& dm) {
  const int64_t B = dm.batch, N = dm.tokens, H = dm.heads, d = dm.head_dim, D = H * d;
  std::vector<double> out(static_cast<size_t>(B * N * D), 0.0);
  auto at = [&](int64_t b, int64_t n, int64_t col) { return static_cast<double>(qkv[(b * N + n) * 3 * D + col]); };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) {
        std::vector<double> s(static_cast<size_t>(N));
        double mx = -1e300, z = 0.0;
        for (int64_t j = 0; j < N; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < d; ++c) dot += at(b, i, h * d + c) * at(b, j, D + h * d + c);
          mx = std::max(mx, s[j] = dot / std::sqrt(static_cast<double>(d)));
        }
        for (int64_t j = 0; j < N; ++j) z += (s[j] = std::exp(s[j] - mx));
        for (int64_t j = 0; j < N; ++j)
          for (int64_t c = 0; c < d; ++c) out[(b * N + i) * D + h * d + c] += s[j] / z * at(b, j, 2 * D + h * d + c);
      }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace

TEST(AttentionPaths, DenseAndFlashAgreeForwardAndBackward) {
  uint64_t key = 100;
  for (int64_t N : {1, 7, 50, 130})
    for (int64_t d : {8, 16})
      for (float p : {0.0f, 0.25f}) {
        AttentionDims dense{2, N, 3, d};
        dense.head_kernel = false;  // the GEMM calls (attention_head has its own tests)
        AttentionDims flash = dense, blocked = dense;
        flash.dense_max_tokens = 0;
        blocked.row_block = 16;  // several query-row blocks (as for N > 1024)
        const Tensor qkv = random_tensor({2, N, 9 * d}, key++, -2.0f, 2.0f);
        const Tensor dout = random_tensor({2, N, 3 * d}, key++);
        const Result a = run(dense, qkv, dout, p), b = run(flash, qkv, dout, p);
        const Result c = run(blocked, qkv, dout, p);
        EXPECT_EQ(a.out, c.out) << "row blocks change the forward: N " << N;
        EXPECT_LT(max_abs_diff(a.dqkv, c.dqkv), 1e-5) << "N " << N << " d " << d << " p " << p;
        EXPECT_LT(max_abs_diff(a.out, b.out), 2e-5) << "N " << N << " d " << d << " p " << p;
        EXPECT_LT(max_abs_diff(a.lse, b.lse), 2e-5) << "N " << N << " d " << d << " p " << p;
        EXPECT_LT(max_abs_diff(a.dqkv, b.dqkv), 1e-4) << "N " << N << " d " << d << " p " << p;
        if (p == 0.0f) {
          const std::vector<double> ref = reference(qkv, dense);
          double err = 0.0;
          for (size_t i = 0; i < ref.size(); ++i) err = std::max(err, std::fabs(a.out[i] - ref[i]));
          EXPECT_LT(err, 2e-5) << "dense N " << N << " d " << d;
        }
      }
}

TEST(AttentionPaths, BothPathsBitIdenticalForOneAndTwoThreads) {
  for (int64_t limit : {int64_t{0}, int64_t{1024}, int64_t{-1}}) {
    AttentionDims dm{1, 70, 3, 16};
    if (limit >= 0) dm.dense_max_tokens = limit;
    else dm.row_block = 32;  // dense, three row blocks
    const Tensor qkv = random_tensor({1, 70, 144}, 31, -1.5f, 1.5f);
    const Tensor dout = random_tensor({1, 70, 48}, 32);
    const int saved = num_threads();
    set_num_threads(1);
    const Result one = run(dm, qkv, dout, 0.1f);
    set_num_threads(2);
    const Result two = run(dm, qkv, dout, 0.1f);
    set_num_threads(saved);
    EXPECT_EQ(one.out, two.out);
    EXPECT_EQ(one.dqkv, two.dqkv);
  }
}

// Backward from the forward's kept probabilities against backward recomputing them from lse:
// the same forward bits, gradients equal to float rounding, with and without dropout, one and
// several query-row blocks.
TEST(AttentionPaths, KeptProbabilitiesMatchRecomputed) {
  uint64_t key = 300;
  for (int64_t N : {1, 7, 50, 130})
    for (int64_t rb : {int64_t{0}, int64_t{16}})
      for (float p : {0.0f, 0.25f}) {
        AttentionDims dm{2, N, 3, 16};
        dm.row_block = rb;
        const Tensor qkv = random_tensor({2, N, 9 * 16}, key++, -2.0f, 2.0f);
        const Tensor dout = random_tensor({2, N, 3 * 16}, key++);
        const Result kept = run(dm, qkv, dout, p, true), recomputed = run(dm, qkv, dout, p, false);
        EXPECT_EQ(kept.out, recomputed.out);
        EXPECT_EQ(kept.lse, recomputed.lse);
        EXPECT_LT(max_abs_diff(kept.dqkv, recomputed.dqkv), 2e-5) << "N " << N << " p " << p;
        double norm = 0.0;
        for (float g : kept.dqkv) norm += std::fabs(g);
        EXPECT_GT(norm, 1e-3) << "gradient vanished: N " << N;
      }
}

// dqkv_fresh: backward stores instead of adding, so a NaN-filled buffer gives the same bits as a
// zero-filled one accumulated into (dense path, one and several row blocks, and the flash path).
TEST(AttentionPaths, FreshGradientIsStoredNotAdded) {
  uint64_t key = 500;
  for (int64_t N : {7, 50})
    for (int mode = 0; mode < 3; ++mode) {
      AttentionDims dm{2, N, 3, 16};
      if (mode == 1) dm.row_block = 16;
      if (mode == 2) dm.dense_max_tokens = 0;
      const Tensor qkv = random_tensor({2, N, 9 * 16}, key++, -2.0f, 2.0f);
      const Tensor dout = random_tensor({2, N, 3 * 16}, key++);
      const Result ref = run(dm, qkv, dout, 0.1f);
      Tensor out = Tensor::empty({2, N, 3 * 16}), lse = Tensor::empty({2, 3, N});
      kernels::attention_forward(out.data(), lse.data(), qkv.data(), dm, {0.1f, 5});
      Tensor dqkv = Tensor::full(qkv.shape(), std::nanf(""));
      kernels::attention_backward(dqkv.data(), dout.data(), out.data(), lse.data(), qkv.data(), dm,
                                  {0.1f, 5}, nullptr, true);
      EXPECT_EQ(dqkv.to_vector(), ref.dqkv) << "N " << N << " mode " << mode;
    }
}
