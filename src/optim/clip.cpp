// Global-norm gradient clipping (see clip.hpp).
#include "optim/clip.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "kernels/optim_update.hpp"
#include "optim/optimizer.hpp"

namespace vit {

double clip_grad_norm(std::vector<NamedParam>& params, float max_norm) {
  VIT_CHECK(max_norm >= 0, "clip_grad_norm: max_norm = ", max_norm);
  const std::vector<ParamChunk> chunks = make_chunks(params, 8192);
  std::vector<const float*> g(params.size(), nullptr);
  int64_t total_numel = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].var.has_grad()) g[i] = params[i].var.grad().data();
    total_numel += params[i].var.numel();
  }
  std::vector<double> partial(chunks.size(), 0.0);
  for_each_chunk(chunks, total_numel, [&](const ParamChunk& ch, int64_t c) {
    const float* gi = g[static_cast<size_t>(ch.param)];
    partial[static_cast<size_t>(c)] = gi ? kernels::sum_squares(gi + ch.begin, ch.end - ch.begin) : 0.0;
  });
  double total = 0.0;
  for (double p : partial) total += p;  // fixed order
  const double norm = std::sqrt(total);
  if (max_norm == 0.0f || !std::isfinite(norm)) return norm;
  const double coef = static_cast<double>(max_norm) / (norm + 1e-6);
  if (coef >= 1.0) return norm;
  const float scale = static_cast<float>(coef);
  for_each_chunk(chunks, total_numel, [&](const ParamChunk& ch, int64_t) {
    if (!g[static_cast<size_t>(ch.param)]) return;
    float* gi = params[static_cast<size_t>(ch.param)].var.grad().data();
    kernels::scale_inplace(gi + ch.begin, ch.end - ch.begin, scale);
  });
  return norm;
}

}  // namespace vit
