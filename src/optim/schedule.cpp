// Learning-rate schedules (see schedule.hpp for the formulas and the warm-up convention).
#include "optim/schedule.hpp"

#include <cmath>

#include "core/error.hpp"

namespace vit {

constexpr double kPi = 3.14159265358979323846;

void validate(const ScheduleSettings& s) {
  if (s.warmup_steps < 0) fail(ErrorKind::Config, "schedule.warmup_steps = ", s.warmup_steps, ": must be >= 0");
  if (!std::isfinite(s.warmup_lr) || s.warmup_lr < 0)
    fail(ErrorKind::Config, "schedule.warmup_lr = ", s.warmup_lr, ": must be >= 0");
  if (!std::isfinite(s.min_lr) || s.min_lr < 0)
    fail(ErrorKind::Config, "schedule.min_lr = ", s.min_lr, ": must be >= 0");
  if (s.kind == ScheduleKind::Step) {
    if (s.step_size < 1) fail(ErrorKind::Config, "schedule.step_size = ", s.step_size, ": must be >= 1");
    if (!std::isfinite(s.gamma) || s.gamma < 0)
      fail(ErrorKind::Config, "schedule.gamma = ", s.gamma, ": must be >= 0");
  }
  if (s.kind == ScheduleKind::Cosine && s.total_steps <= s.warmup_steps)
    fail(ErrorKind::Config, "schedule: cosine needs total_steps (", s.total_steps,
         ") > warmup_steps (", s.warmup_steps, ")");
}

float learning_rate(const ScheduleSettings& s, float base_lr, int64_t step) {
  validate(s);
  const double lr = base_lr;
  const double t = static_cast<double>(step < 0 ? 0 : step);
  if (step < s.warmup_steps) {
    const double w = s.warmup_lr;
    return static_cast<float>(w + t * (lr - w) / static_cast<double>(s.warmup_steps));
  }
  switch (s.kind) {
    case ScheduleKind::Constant:
      return base_lr;
    case ScheduleKind::Step:
      return static_cast<float>(lr * std::pow(static_cast<double>(s.gamma),
                                              static_cast<double>(step / s.step_size)));
    case ScheduleKind::Cosine: {
      const double span = static_cast<double>(s.total_steps - s.warmup_steps);
      double progress = (t - static_cast<double>(s.warmup_steps)) / span;
      if (progress > 1.0) progress = 1.0;
      const double lo = s.min_lr;
      return static_cast<float>(lo + 0.5 * (lr - lo) * (1.0 + std::cos(kPi * progress)));
    }
  }
  return base_lr;
}

int64_t epochs_to_steps(double epochs, int64_t steps_per_epoch) {
  VIT_CHECK(epochs >= 0 && steps_per_epoch >= 0, "epochs_to_steps: ", epochs, " x ", steps_per_epoch);
  return static_cast<int64_t>(std::llround(epochs * static_cast<double>(steps_per_epoch)));
}

}  // namespace vit
