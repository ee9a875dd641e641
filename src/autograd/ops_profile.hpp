// Optional per-op timers (VIT_PROFILE=1 in the environment, read once): op adapters record through
// profiled_record(), which charges the wall time since the previous op's record to this op's
// forward (kernel plus the layer glue before it) and wraps the backward closure in a timer.
// Off by default: one predictable branch per op. Single-threaded bookkeeping (ops are recorded
// and replayed on the calling thread). Not a substitute for perf / callgrind: no kernel breakdown.
#pragma once
#include <string>
#include <vector>

#include "autograd/variable.hpp"

namespace vit {

bool op_profile_enabled();
// Start a new forward pass: the next op's forward time counts from here.
void op_profile_mark();

struct OpProfileRow {
  std::string name;
  double forward_s = 0, backward_s = 0;
  long long calls = 0;
};
// Accumulated rows (largest forward + backward first), then cleared.
std::vector<OpProfileRow> op_profile_take();

Var profiled_record(Tensor out, std::initializer_list<Var> inputs, BackwardFn backward, const char* name);
Var profiled_record(Tensor out, const std::vector<Var>& inputs, BackwardFn backward, const char* name);

}  // namespace vit
