// Building the optimizer chain from typed settings, once: the only place that maps an
// OptimizerKind to a class, and the CLI's --opt name parser. Strings stop here.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "optim/optimizer.hpp"
#include "optim/settings.hpp"

namespace vit {

// Throws vit::Error(Config) naming the first out-of-range field (betas in [0,1), eps > 0,
// weight_decay >= 0, momentum >= 0, dampening in [0,1], nesterov needs momentum > 0 and
// dampening 0 (torch's rule), lookahead k >= 1 and alpha in (0, 1], clip_grad_norm >= 0).
void validate(const OptimSettings& settings);

// sgd | adam | adamw | radam, optionally with Lookahead (settings.lookahead set).
std::unique_ptr<Optimizer> make_optimizer(const OptimSettings& settings, std::vector<NamedParam> params);

// --opt NAME: sgd|adam|adamw|radam with an optional `lookahead_` prefix. Sets settings.kind;
// with the prefix enables Lookahead (keeping k/alpha if already set), without it disables it.
// Unknown names throw vit::Error(Usage) listing the valid ones.
OptimSettings& apply_opt_name(OptimSettings& settings, const std::string& name);

// The inverse, for logs and run summaries: "adamw", "lookahead_radam", ...
std::string opt_name(const OptimSettings& settings);

}  // namespace vit
