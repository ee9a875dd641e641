#include <gtest/gtest.h>

#include <set>

#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "core/tensor.hpp"

using namespace vit;

TEST(Tensor, ShapeNumelReshapeClone) {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.size(-1), 3);
  Tensor r = t.reshape({3, 2});
  r[0] = 9;
  EXPECT_EQ(t[0], 9) << "reshape shares storage";
  Tensor c = t.clone();
  c[0] = 1;
  EXPECT_EQ(t[0], 9) << "clone is deep";
  EXPECT_THROW(t.reshape({4}), Error);
  EXPECT_THROW(t.size(2), Error);
}

TEST(Allocator, RecyclesBlocks) {
  const auto before = allocator::stats().os_allocations;
  for (int i = 0; i < 100; ++i) {
    Tensor t = Tensor::empty({1000, 17});
    t[0] = 1;
  }
  EXPECT_LE(allocator::stats().os_allocations - before, 1);
  const auto s = allocator::stats();
  EXPECT_GE(s.bytes_cached, 1000 * 17 * 4);
}

TEST(Rng, PhiloxKnownAnswer) {
  // Random123 known-answer vectors (kat_vectors) for philox4x32-10:
  // ctr {0,0,0,0}, key {0,0} -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8
  auto r = philox4x32({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(r[0], 0x6627e8d5u);
  EXPECT_EQ(r[1], 0xe169c58du);
  EXPECT_EQ(r[2], 0xbc57ac4cu);
  EXPECT_EQ(r[3], 0x9b00dbd8u);
  // ctr {243f6a88, 85a308d3, 13198a2e, 03707344}, key {a4093822, 299f31d0}
  r = philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u});
  EXPECT_EQ(r[0], 0xd16cfe09u);
  EXPECT_EQ(r[1], 0x94fdccebu);
  EXPECT_EQ(r[2], 0x5001e420u);
  EXPECT_EQ(r[3], 0x24126ea1u);
}

TEST(Rng, StreamsAreReproducibleAndDistinct) {
  Rng a(42, RngPurpose::Shuffle, 3), b(42, RngPurpose::Shuffle, 3), c(42, RngPurpose::Shuffle, 4),
      d(42, RngPurpose::Augment, 3);
  std::set<uint32_t> seen;
  for (int i = 0; i < 10; ++i) {
    const uint32_t x = a.next_u32();
    EXPECT_EQ(x, b.next_u32());
    EXPECT_NE(x, c.next_u32());
    EXPECT_NE(x, d.next_u32());
  }
  // skip() resumes a stream exactly
  Rng e(42, RngPurpose::Shuffle, 3);
  e.skip(7);
  Rng f(42, RngPurpose::Shuffle, 3);
  for (int i = 0; i < 7; ++i) f.next_u32();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(e.next_u32(), f.next_u32());
}

TEST(Rng, UniformAndNormalMoments) {
  Rng r(1, RngPurpose::Test);
  double s = 0, s2 = 0, u = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal();
    s += x;
    s2 += x * x;
    const float v = r.uniform();
    ASSERT_GE(v, 0.0f);
    ASSERT_LT(v, 1.0f);
    u += v;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
  EXPECT_NEAR(u / n, 0.5, 0.01);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(r.below(7), 7u);
}

TEST(Parallel, RangeCoversEverythingOnce) {
  std::vector<int> hits(1003, 0);
  parallel_range(0, 1003, 10, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) hits[static_cast<size_t>(i)]++;
  });
  for (int h : hits) EXPECT_EQ(h, 1);
}
