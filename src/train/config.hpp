// The run configuration: the typed settings of every layer gathered in one struct, parsed from a
// JSON file plus `--set a.b=value` overrides (PRODUCT.md "Config"). Parsing is strict: unknown
// keys (with a "did you mean"), duplicate keys, wrong types, fractional integers, negative sizes
// and out-of-range rates are ErrorKind::Config errors naming the source and the key path, all
// violations listed in one message. JSON itself stays in config_json.cpp; callers see structs only.
#pragma once
#include <string>
#include <vector>

#include "data/settings.hpp"
#include "nn/model_config.hpp"
#include "optim/settings.hpp"
#include "train/train_settings.hpp"

namespace vit {

struct Config {
  DataSettings data;
  ModelConfig model;  // image_size and channels mirror data.*; num_classes is set from the data set
  OptimSettings optim;
  ScheduleSettings schedule;  // total_steps is set by the trainer, not by the config
  int64_t warmup_epochs = 0;  // schedule.warmup_epochs; the trainer turns it into warmup_steps
  TrainSettings train;
  std::string out;            // run directory ("" : the CLI picks runs/<date>-<time>-<arch>)
};

// Parse a config file. Relative paths inside (data.train, data.val, out) resolve against the
// file's folder and are stored absolute. Missing or unreadable file -> NoInput; anything wrong inside -> Config. Per-key
// rules only: call validate() after all overrides for the cross-field rules.
Config parse_config_file(const std::string& path);

// Parse config text; `source` names it in messages, `base_dir` resolves relative paths ("" keeps
// them as written). Used for the config stored in a checkpoint.
Config parse_config_string(const std::string& text, const std::string& source,
                           const std::string& base_dir = "");

// Apply one `key.path=value` assignment (value parsed as JSON, else taken as a string; an object
// value replaces the whole object). Same per-key rules as the file, errors name the assignment.
// Relative paths resolve against the working directory (stored absolute). Setting any key under
// optim.lookahead (or optim.name=lookahead_*) enables Lookahead; optim.lookahead=null disables it.
void apply_override(Config& config, const std::string& assignment);

// Cross-field and range rules (heads divide dim, patch divides image size, channels 1 or 3,
// mean/std lengths, rates in range, ...). All violations in one Error(Config).
void validate(const Config& config);

// The resolved config as pretty JSON in schema order; parse_config_string(to_json(c)) == c.
std::string to_json(const Config& config);
// Canonical form for checkpoints: sorted keys, no whitespace.
std::string to_canonical_json(const Config& config);

// Edit distance (Levenshtein) used for "did you mean" suggestions; exposed for tests.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace vit
