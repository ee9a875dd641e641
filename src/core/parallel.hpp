// OpenMP helpers. Work is split over output rows/tiles with a static schedule so every output
// element is written by one thread in a fixed order; long sums use a fixed chunk count that does
// not depend on the thread count (see fixed_chunks), which keeps results bit-identical for any
// number of threads. The library also builds without OpenMP (VIT_OPENMP=OFF).
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vit {

void set_num_threads(int n);  // n <= 0: leave the OpenMP default
int num_threads();
int thread_id();  // inside a parallel region

// The number of partial sums a long reduction is split into: fixed, independent of threads.
constexpr int64_t kReduceChunks = 16;

// Run fn(i) for i in [begin, end) over the threads, static schedule. fn must not throw.
template <typename F>
void parallel_for(int64_t begin, int64_t end, F&& fn) {
#ifdef _OPENMP
  if (end - begin > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (int64_t i = begin; i < end; ++i) fn(i);
    return;
  }
#endif
  for (int64_t i = begin; i < end; ++i) fn(i);
}

// Like parallel_for but over ranges: fn(lo, hi) is called with contiguous blocks of at least
// `grain` indices, so tiny loops stay on one thread.
template <typename F>
void parallel_range(int64_t begin, int64_t end, int64_t grain, F&& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  int64_t blocks = 1;
#ifdef _OPENMP
  if (!omp_in_parallel()) {
    const int64_t by_grain = grain > 0 ? n / grain : n;
    blocks = by_grain < omp_get_max_threads() ? by_grain : omp_get_max_threads();
    if (blocks < 1) blocks = 1;
  }
#else
  (void)grain;
#endif
  if (blocks == 1) {
    fn(begin, end);
    return;
  }
  parallel_for(0, blocks, [&](int64_t b) {
    fn(begin + n * b / blocks, begin + n * (b + 1) / blocks);
  });
}

}  // namespace vit
