// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_ semantics: scale every
// gradient by max_norm / (norm + 1e-6) when that is < 1). The norm is computed in double from
// per-chunk sums over a chunk list fixed by the parameter sizes, added in a fixed order, so it
// is identical for any thread count. Parameters without a gradient buffer count as zero.
#pragma once
#include <vector>

#include "autograd/variable.hpp"

namespace vit {

// Returns the pre-clip global norm (for logging). max_norm == 0: compute only. A non-finite
// norm is returned without touching the gradients (the trainer reports divergence).
double clip_grad_norm(std::vector<NamedParam>& params, float max_norm);

}  // namespace vit
