// make_optimizer / apply_opt_name / validate.
#include "optim/make_optimizer.hpp"

#include <cmath>

#include "core/error.hpp"
#include "optim/adam.hpp"
#include "optim/lookahead.hpp"
#include "optim/radam.hpp"
#include "optim/sgd.hpp"

namespace vit {

static const char* kind_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::Sgd: return "sgd";
    case OptimizerKind::Adam: return "adam";
    case OptimizerKind::AdamW: return "adamw";
    case OptimizerKind::RAdam: return "radam";
  }
  return "?";
}

void validate(const OptimSettings& s) {
  auto bad = [](const char* field, float value, const char* rule) {
    fail(ErrorKind::Config, "optim.", field, " = ", value, ": must be ", rule);
  };
  auto finite = [](float x) { return std::isfinite(x); };
  if (!finite(s.lr) || s.lr < 0) bad("lr", s.lr, ">= 0");
  if (!finite(s.weight_decay) || s.weight_decay < 0) bad("weight_decay", s.weight_decay, ">= 0");
  if (!(s.beta1 >= 0 && s.beta1 < 1)) bad("beta1", s.beta1, "in [0, 1)");
  if (!(s.beta2 >= 0 && s.beta2 < 1)) bad("beta2", s.beta2, "in [0, 1)");
  if (!(s.eps > 0) || !finite(s.eps)) bad("eps", s.eps, "> 0");
  if (!(s.momentum >= 0) || !finite(s.momentum)) bad("momentum", s.momentum, ">= 0");
  if (!(s.dampening >= 0 && s.dampening <= 1)) bad("dampening", s.dampening, "in [0, 1]");
  if (s.kind == OptimizerKind::Sgd && s.nesterov && (s.momentum <= 0 || s.dampening != 0))
    fail(ErrorKind::Config, "optim.nesterov requires momentum > 0 and dampening = 0 (momentum ",
         s.momentum, ", dampening ", s.dampening, ")");
  if (!finite(s.radam_threshold)) bad("radam_threshold", s.radam_threshold, "finite");
  if (!(s.clip_grad_norm >= 0) || !finite(s.clip_grad_norm)) bad("clip_grad_norm", s.clip_grad_norm, ">= 0");
  if (s.lookahead) {
    if (s.lookahead->k < 1)
      fail(ErrorKind::Config, "optim.lookahead.k = ", s.lookahead->k, ": must be >= 1");
    if (!(s.lookahead->alpha > 0 && s.lookahead->alpha <= 1))
      bad("lookahead.alpha", s.lookahead->alpha, "in (0, 1]");
  }
}

std::unique_ptr<Optimizer> make_optimizer(const OptimSettings& s, std::vector<NamedParam> params) {
  validate(s);
  std::unique_ptr<Optimizer> opt;
  switch (s.kind) {
    case OptimizerKind::Sgd:
      opt = std::make_unique<Sgd>(std::move(params),
                                  SgdConfig{s.momentum, s.dampening, s.weight_decay, s.nesterov});
      break;
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW:
      opt = std::make_unique<Adam>(std::move(params),
                                   AdamConfig{s.beta1, s.beta2, s.eps, s.weight_decay,
                                              s.kind == OptimizerKind::AdamW});
      break;
    case OptimizerKind::RAdam:
      opt = std::make_unique<RAdam>(std::move(params),
                                    RAdamConfig{s.beta1, s.beta2, s.eps, s.weight_decay,
                                                s.radam_threshold, s.radam_policy, s.radam_decoupled});
      break;
  }
  VIT_ASSERT(opt != nullptr);
  if (s.lookahead) opt = std::make_unique<Lookahead>(std::move(opt), s.lookahead->k, s.lookahead->alpha);
  return opt;
}

OptimSettings& apply_opt_name(OptimSettings& s, const std::string& name) {
  static const std::string prefix = "lookahead_";
  const bool lookahead = name.rfind(prefix, 0) == 0;
  const std::string base = lookahead ? name.substr(prefix.size()) : name;
  const OptimizerKind kinds[] = {OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW,
                                 OptimizerKind::RAdam};
  for (OptimizerKind kind : kinds) {
    if (base != kind_name(kind)) continue;
    s.kind = kind;
    if (!lookahead)
      s.lookahead.reset();
    else if (!s.lookahead)
      s.lookahead.emplace();
    return s;
  }
  fail(ErrorKind::Usage, "unknown optimizer '", name,
       "': expected sgd, adam, adamw or radam, optionally prefixed with lookahead_ "
       "(e.g. lookahead_radam)");
}

std::string opt_name(const OptimSettings& s) {
  return (s.lookahead ? std::string("lookahead_") : std::string()) + kind_name(s.kind);
}

}  // namespace vit
