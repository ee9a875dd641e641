// Long sequences: a forward+backward of a 1-layer ViT at N = 4096 patch tokens (image 256,
// patch 4, batch 1, dim 64, 4 heads) for softmax and FAVOR+ attention. The peak tensor memory
// (allocator stats) must stay far below one N x N x heads float32 score tensor (~268 MB), which
// shows neither path materialises the attention matrix.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "autograd/gradcheck.hpp"
#include "nn/vit.hpp"

using namespace vit;

namespace {

void long_sequence(AttentionKind kind) {
  ModelConfig c;
  c.image_size = 256;
  c.channels = 1;
  c.patch_size = 4;
  c.dim = 64;
  c.depth = 1;
  c.heads = 4;
  c.num_classes = 10;
  c.attention = kind;
  ViT model(c, 1);
  const int64_t n = c.num_patches() + 1;
  ASSERT_EQ(n, 4097);
  const Tensor images = random_tensor({1, 1, 256, 256}, 3);

  allocator::reset_peak();
  const int64_t base = allocator::stats().bytes_in_use;
  const auto t0 = std::chrono::steady_clock::now();
  Var loss = ViT::loss(model.forward(images, 0), {7}, 0.1f);
  backward(loss);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t peak = allocator::stats().peak_bytes_in_use - base;

  const double scores = static_cast<double>(n) * n * c.heads * 4.0;  // one [H, N, N] f32 tensor
  std::printf("[%s] N=%lld: peak %.1f MiB over %.1f MiB baseline (N*N*H*4 = %.0f MiB), %.2f s\n",
              kind == AttentionKind::Favor ? "favor" : "softmax", static_cast<long long>(n),
              static_cast<double>(peak) / (1 << 20), static_cast<double>(base) / (1 << 20),
              scores / (1 << 20), secs);
  EXPECT_TRUE(std::isfinite(loss.value()[0]));
  for (const NamedParam& p : model.parameters()) ASSERT_TRUE(p.var.has_grad()) << p.name;
  // What is held is O(N D): about 20 saved activations of [N, 64] or [N, 256] floats plus their
  // gradients, measured 36 MiB for both kinds (the attention core adds almost nothing). The bound
  // is ONE head's N x N f32 matrix (64 MiB, a quarter of N*N*H*4): holding any score matrix, even
  // for a single head, would add at least that much and fail the test.
  EXPECT_LT(static_cast<double>(peak), scores / static_cast<double>(c.heads));
}

}  // namespace

TEST(LongSequence, SoftmaxAt4096TokensHoldsNoScoreMatrix) { long_sequence(AttentionKind::Softmax); }

TEST(LongSequence, FavorAt4096TokensHoldsNoScoreMatrix) { long_sequence(AttentionKind::Favor); }
