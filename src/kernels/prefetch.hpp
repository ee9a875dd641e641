// Software prefetching spread over a computation. A burst of prefetches for a whole next block
// (hundreds of lines) overflows the core's miss buffers and most of it is lost: measured on this
// 2-vCPU EPYC (Zen 3), 780 lines issued at once 30 us ahead of use still read at ~DRAM speed
// (5 us against 0.9 hot), while the same lines issued one per ~80 cycles all arrived in time.
// So callers (the attention head kernels) add the rows the next block will read, say over how
// many steps of the current block to spread them, and call step() between register tiles.
// Prefetches are hints: nothing here changes a result.
#pragma once
#include <cstdint>

namespace vit::kernels::detail {

class Trickle {
 public:
  // `rows` rows of `row_floats` floats at x, x + ld, ... (up to kMaxSpans calls are kept)
  void add(const float* x, int64_t rows, int64_t ld, int64_t row_floats);
  // Spreads what was added (and not yet issued) evenly over the next `steps` calls of step().
  void pace(int64_t steps);
  void step();  // issues the next few rows' lines
  int64_t pending() const { return total_ - issued_; }  // rows not yet prefetched

 private:
  struct Span {
    const float* x;
    int64_t rows, ld, row_floats;
  };
  static constexpr int kMaxSpans = 5;
  Span spans_[kMaxSpans];
  int count_ = 0, span_ = 0;
  int64_t row_ = 0, total_ = 0, issued_ = 0, per_step_ = 0;
};

}  // namespace vit::kernels::detail
