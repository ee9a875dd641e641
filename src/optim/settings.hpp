// Typed optimizer-chain and schedule settings (filled from the config's `optim` and `schedule`
// sections and the --opt/--lr/--lookahead-* flags by train/config_json.cpp). Strings never get
// below this point: the chain is built once from these structs.
#pragma once
#include <cstdint>
#include <optional>

namespace vit {

enum class OptimizerKind { Sgd, Adam, AdamW, RAdam };
// RAdam while the variance is not tractable (rho_t <= threshold): torch's un-adapted momentum
// step (`Sgd`) or no update at all (`Skip`).
enum class RAdamPolicy { Sgd, Skip };

struct LookaheadSettings {
  int64_t k = 5;        // inner steps per sync (timm uses 6)
  float alpha = 0.5f;   // slow-weight step
  bool sync_before_eval = true;
};

struct OptimSettings {
  OptimizerKind kind = OptimizerKind::AdamW;
  float lr = 1e-3f;
  float weight_decay = 0.05f;  // not applied to 1-D params, biases, pos_embed, cls_token
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;     // adam, adamw, radam
  float momentum = 0.9f, dampening = 0.0f;             // sgd
  bool nesterov = false;                               // sgd
  float radam_threshold = 5.0f;                        // rho_t > threshold: rectified step
  RAdamPolicy radam_policy = RAdamPolicy::Sgd;
  bool radam_decoupled = false;                        // torch.optim.RAdam default: L2 (coupled)
  std::optional<LookaheadSettings> lookahead;
  float clip_grad_norm = 0.0f;                         // 0: off
};

enum class ScheduleKind { Constant, Step, Cosine };

struct ScheduleSettings {
  ScheduleKind kind = ScheduleKind::Cosine;
  int64_t warmup_steps = 0;     // linear warm-up from warmup_lr to lr (timm formula, per step)
  float warmup_lr = 1e-6f;
  float min_lr = 1e-5f;         // cosine floor
  int64_t step_size = 0;        // step schedule: multiply by gamma every step_size steps
  float gamma = 0.1f;
  int64_t total_steps = 0;      // cosine period (the run's step budget), set by the trainer
};

}  // namespace vit
