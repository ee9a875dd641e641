// Cross-field config rules (validate) and the edit distance behind "did you mean". The per-key
// types and ranges are in config_json.cpp's schema; validate() re-runs them so a Config built in
// code gets the same checks as one read from a file.
#include "train/config.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace vit {
namespace detail {
void check_per_key_rules(const Config& config);  // config_json.cpp
}

size_t edit_distance(const std::string& a, const std::string& b) {
  // One row of the Levenshtein table at a time: row[j] = distance(a[0..i), b[0..j)).
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

void validate(const Config& c) {
  detail::check_per_key_rules(c);
  std::vector<std::string> errors;
  auto add = [&errors](const std::string& e) { errors.push_back(e); };
  const auto s = [](auto v) { return std::to_string(v); };

  const DataSettings& d = c.data;
  if (d.channels != 1 && d.channels != 3) add("data.channels must be 1 or 3, got " + s(d.channels));
  const auto per_channel = [&](const char* key, size_t n) {
    if (n != 1 && n != static_cast<size_t>(d.channels))
      add(std::string(key) + " needs 1 or data.channels (" + s(d.channels) + ") values, got " + s(n));
  };
  per_channel("data.mean", d.mean.size());
  per_channel("data.std", d.std.size());
  const AugmentSettings& g = d.augment;
  if (g.rrc_scale_min > g.rrc_scale_max) add("data.augment.rrc_scale: min must be <= max");
  if (g.rrc_ratio_min > g.rrc_ratio_max) add("data.augment.rrc_ratio: min must be <= max");

  const ModelConfig& m = c.model;
  if (m.image_size != d.image_size || m.channels != d.channels)
    add("model.image_size/channels must equal data.image_size/channels");
  if (m.patch_size > d.image_size)
    add("model.patch_size (" + s(m.patch_size) + ") is larger than data.image_size (" +
        s(d.image_size) + ")");
  else if (d.image_size % m.patch_size != 0)
    add("model.patch_size (" + s(m.patch_size) + ") must divide data.image_size (" +
        s(d.image_size) + ")");
  if (m.dim % m.heads != 0)
    add("model.heads (" + s(m.heads) + ") must divide model.dim (" + s(m.dim) + ")");
  if (m.mlp_hidden() < 1) add("model.mlp_ratio gives an empty MLP (dim * mlp_ratio < 1)");
  if (m.num_classes < 1) add("model.num_classes must be >= 1");

  const ScheduleSettings& h = c.schedule;
  if (h.kind == ScheduleKind::Step && h.step_size < 1)
    add("schedule.step_size must be >= 1 for the step schedule");
  if (h.warmup_steps > 0 && c.warmup_epochs > 0)
    add("schedule.warmup_steps and schedule.warmup_epochs are both set; use one");
  if (h.total_steps > 0 && h.warmup_steps > h.total_steps)
    add("schedule.warmup_steps (" + s(h.warmup_steps) + ") exceeds the run's " + s(h.total_steps) +
        " steps");

  const TrainSettings& t = c.train;
  if (t.epochs == 0 && t.steps == 0) add("train.epochs or train.steps must be > 0");
  if (c.warmup_epochs > 0 && t.epochs > 0 && t.steps == 0 && c.warmup_epochs > t.epochs)
    add("schedule.warmup_epochs (" + s(c.warmup_epochs) + ") exceeds train.epochs (" + s(t.epochs) + ")");

  if (!errors.empty()) {
    std::string msg;
    for (const std::string& e : errors) msg += (msg.empty() ? "" : "; ") + e;
    fail(ErrorKind::Config, "invalid config: ", msg);
  }
}

}  // namespace vit
