// Finite-difference gradient check. The function under test maps input Vars to one output Var;
// it is reduced to a scalar L = sum(r * f(x)) with a fixed random r (so every output element
// matters), the analytic dL/dx comes from backward(), the numeric one from central differences
// (f evaluated in float32, L summed in double). Tolerance: |a - n| <= atol + rtol * |n|.
// Float32 central differences have error ~ h^2 f''' + ulp(f)/h; h = 1e-2 relative to |x|
// (floored at 1e-2) keeps both near 1e-4 for O(1) values, hence the defaults.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.hpp"

namespace vit {

struct GradcheckOptions {
  double step = 1e-2;
  double atol = 2e-3;
  double rtol = 2e-2;
  uint64_t seed = 7;
  int64_t max_checks_per_input = 200;  // a random subset of elements for big inputs
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string report;  // first mismatches, with input index, element and both values
};

using GradFn = std::function<Var(const std::vector<Var>&)>;

// Check d f / d inputs[i] for every input that requires a gradient.
GradcheckResult gradcheck(const GradFn& f, const std::vector<Var>& inputs,
                          const GradcheckOptions& options = {});

// Random tensor with entries in [lo, hi) from a Test stream keyed by `key`.
Tensor random_tensor(const Shape& shape, uint64_t key, float lo = -1.0f, float hi = 1.0f);

}  // namespace vit
