// Trickle (see prefetch.hpp).
#include "kernels/prefetch.hpp"

namespace vit::kernels::detail {

void Trickle::add(const float* x, int64_t rows, int64_t ld, int64_t row_floats) {
  if (count_ == kMaxSpans || rows <= 0 || row_floats <= 0) return;
  spans_[count_++] = {x, rows, ld, row_floats};
  total_ += rows;
}

void Trickle::pace(int64_t steps) {
  const int64_t left = total_ - issued_;
  per_step_ = steps > 0 ? (left + steps - 1) / steps : left;
}

// One step issues per_step_ rows' lines (a row: every 64-byte line it touches).
void Trickle::step() {
  for (int64_t n = 0; n < per_step_ && span_ < count_; ++n, ++issued_) {
    const Span& sp = spans_[span_];
    const float* row = sp.x + row_ * sp.ld;
    const uintptr_t first = reinterpret_cast<uintptr_t>(row) & ~uintptr_t{63};
    const uintptr_t last = reinterpret_cast<uintptr_t>(row + sp.row_floats - 1);
    for (uintptr_t line = first; line <= last; line += 64)
      __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 3);
    if (++row_ == sp.rows) row_ = 0, ++span_;
  }
}

}  // namespace vit::kernels::detail
