// Learning-rate schedules as pure functions of the global step (0-based: the lr used by the
// optimizer step that follows `step` completed steps), so resuming needs no scheduler state.
// All kinds share timm's linear warm-up: for t < warmup_steps, lr_t = warmup_lr + t (lr -
// warmup_lr) / warmup_steps. After warm-up:
//   constant: lr
//   step:     lr * gamma^floor(t / step_size)   (t NOT shifted: drops at step_size, 2 step_size...)
//   cosine:   min_lr + 0.5 (lr - min_lr) (1 + cos(pi (t - T_w) / (T - T_w))), T = total_steps.
//             t IS shifted by the warm-up (timm's warmup_prefix=True form), so the curve starts at
//             lr right after warm-up and reaches min_lr exactly at t = total_steps (and stays there).
#pragma once
#include <cstdint>

#include "optim/settings.hpp"

namespace vit {

// Throws vit::Error(Config) for a schedule that cannot be evaluated (negative warm-up, step
// kind with step_size < 1, cosine with total_steps <= warmup_steps, negative or NaN rates).
void validate(const ScheduleSettings& schedule);

// Validates, then returns the rate (computed in double, rounded to float once).
float learning_rate(const ScheduleSettings& schedule, float base_lr, int64_t step);

// Warm-up or period given in epochs -> steps (rounded to nearest; used by the config layer).
int64_t epochs_to_steps(double epochs, int64_t steps_per_epoch);

}  // namespace vit
