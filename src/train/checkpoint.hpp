// Training checkpoints: our content (RELIABILITY.md §3/§4) inside a safetensors file, committed
// atomically into <run>/checkpoints/ with latest.json and retention, plus best.safetensors and the
// resume search. Tensor names are the caller's (model.<timm name>, buffer.<name>,
// optim.<kind>.<slot>.<param>, lookahead.slow.<param>); integer state is JSON in __metadata__.
// Not here: what the tensors mean (the trainer builds and restores them) and the run lock (fsutil).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace vit {

constexpr const char* kCheckpointFormat = "vit-train-ckpt";
constexpr int kCheckpointFormatVersion = 1;

// Scalar resume state (§4), stored as the "train_state" metadata JSON under a strict schema.
struct TrainState {
  int64_t step = 0;               // optimizer updates applied (the LR is a pure function of it)
  int64_t epoch = 0;              // epoch in progress, 0-based
  int64_t epoch_position = 0;     // samples of that epoch already consumed
  int64_t batch_size = 0;
  uint64_t seed = 0;
  int64_t threads = 0;            // thread count actually used (bit-exact resume needs the same)
  int64_t skipped_steps = 0;      // non-finite steps skipped so far
  int64_t consecutive_skips = 0;
  bool finished = false;          // the run completed: resuming it exits 0 at once
  double best_eval_top1 = -1.0;   // -1: no eval yet
  int64_t best_step = -1;
  // Named integer state of modules, e.g. "optim.t", "optim.sgd.initialised", "lookahead.counter",
  // "lookahead.slow_ready", "favor.calls_since_redraw", "favor.redraws". Names: [A-Za-z0-9._-]+.
  std::map<std::string, int64_t> counters;
  // Named running sums of the current epoch (train loss, correct count, ...), finite values.
  std::map<std::string, double> sums;
};

struct CheckpointState {
  std::string config_json;           // canonical resolved config (to_canonical_json)
  std::vector<std::string> classes;  // class names in index order
  std::vector<float> mean, std;      // input normalisation, for vit-eval and Python users
  std::string data_manifest;         // hash of the training data manifest ("" : not recorded)
  TrainState train;
  std::map<std::string, Tensor> tensors;
};

struct CheckpointLoadOptions {
  bool allow_nonfinite = false;  // vit-eval --allow-nonfinite
};

// File name of the step checkpoint: "step-00001200.safetensors".
std::string checkpoint_file_name(int64_t step);

// Bytes of a checkpoint file. Non-finite tensor values -> Error(Diverged): never save a broken
// state. Deterministic (no timestamps): the same state gives the same bytes.
std::string serialize_checkpoint(const CheckpointState& state);
// Validate (safetensors rules 1-8, 11; format and version, metadata schema, Adam v >= 0) and
// decode. Violations -> Error(Data) naming `source` and the rule.
CheckpointState parse_checkpoint(const std::string& bytes, const std::string& source,
                                 const CheckpointLoadOptions& options = {});
CheckpointState load_checkpoint(const std::string& path, const CheckpointLoadOptions& options = {});

// Rule 10: the tensor set must equal `expected` (name -> shape), nothing missing or extra.
// Violations -> Error(Data) listing the names.
void check_tensor_set(const CheckpointState& state, const std::map<std::string, Shape>& expected,
                      const std::string& source);

struct CommitResult {
  std::string path;                   // the committed step file
  std::vector<std::string> removed;   // step files deleted by retention
  std::vector<std::string> warnings;  // failed deletions (not fatal)
};

// Commit protocol (§3): free-space check, checkpoints/step-N.safetensors atomically, then
// checkpoints/latest.json atomically, then retention: keep the `keep_last` newest step files, drop
// files of steps after this one (an abandoned future after resuming from an older file), never the
// file latest.json names. Write errors -> Error(Io) with earlier files and latest.json untouched.
CommitResult commit_checkpoint(const std::string& run_dir, const CheckpointState& state, int64_t keep_last);

// <run>/best.safetensors, atomically. Returns its path.
std::string write_best(const std::string& run_dir, const CheckpointState& state);

struct ResumeChoice {
  std::string path;                      // "" when nothing valid was found
  std::optional<CheckpointState> state;  // the loaded, validated checkpoint
  std::vector<std::string> skipped;      // "<file>: <reason>" for each rejected candidate
};

// `--resume auto`: the newest step file that passes every rule (latest.json is only a hint; a
// complete file newer than it is preferred), skipping corrupt ones; none -> empty path.
ResumeChoice find_resume_checkpoint(const std::string& run_dir);

// Remove temp files of dead writers in <run> and <run>/checkpoints; returns how many.
int cleanup_stale_temps(const std::string& run_dir);

}  // namespace vit
