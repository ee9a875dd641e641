// Trickle (kernels/prefetch.hpp): its pacing. Prefetches themselves are not observable; that they
// change no results is checked where they are used
// (AttentionHead.PrefetchingTheNextHeadChangesNoBits).
#include <gtest/gtest.h>

#include <vector>

#include "kernels/prefetch.hpp"

TEST(Trickle, SpreadsEveryRowOverTheStepsItIsPacedFor) {
  std::vector<float> buf(4096);
  vit::kernels::detail::Trickle t;
  t.add(buf.data() + 3, 10, 100, 70);  // rows straddling cache lines
  t.add(buf.data() + 2000, 1, 0, 500);
  EXPECT_EQ(t.pending(), 11);
  t.pace(4);  // 3 rows per step
  for (int s = 0; s < 3; ++s) t.step();
  EXPECT_EQ(t.pending(), 2);
  t.step();
  EXPECT_EQ(t.pending(), 0);
  t.step();  // nothing left: a no-op
  EXPECT_EQ(t.pending(), 0);
  vit::kernels::detail::Trickle burst;
  burst.add(buf.data(), 5, 16, 16);
  burst.pace(0);  // no steps to spread over: everything at the first step
  burst.step();
  EXPECT_EQ(burst.pending(), 0);
}
