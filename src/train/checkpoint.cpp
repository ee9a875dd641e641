// Checkpoint content, validation and the commit protocol (see checkpoint.hpp). The container
// rules are safetensors.cpp's; this file adds our metadata schema (strict, unknown keys rejected),
// the optimizer-state sanity rule, and the file-system sequence temp -> fsync -> rename -> dir fsync.
#include "train/checkpoint.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "train/config.hpp"
#include "train/fsutil.hpp"
#include "train/json_strict.hpp"
#include "train/safetensors.hpp"

namespace vit {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

[[noreturn]] void reject(const std::string& source, const std::string& rule, const std::string& detail) {
  fail(ErrorKind::Data, source, ": invalid checkpoint (", rule, "): ", detail);
}

ojson train_state_to_json(const TrainState& t) {
  ojson j;
  j["step"] = t.step;
  j["epoch"] = t.epoch;
  j["epoch_position"] = t.epoch_position;
  j["batch_size"] = t.batch_size;
  j["seed"] = t.seed;
  j["threads"] = t.threads;
  j["skipped_steps"] = t.skipped_steps;
  j["consecutive_skips"] = t.consecutive_skips;
  j["finished"] = t.finished;
  VIT_CHECK(std::isfinite(t.best_eval_top1), "train_state.best_eval_top1 is not finite");
  j["best_eval_top1"] = t.best_eval_top1;
  j["best_step"] = t.best_step;
  j["counters"] = ojson::object();
  for (const auto& [k, v] : t.counters) {
    VIT_CHECK(valid_tensor_name(k), "train_state counter name '", k, "'");
    j["counters"][k] = v;
  }
  j["sums"] = ojson::object();
  for (const auto& [k, v] : t.sums) {
    VIT_CHECK(valid_tensor_name(k) && std::isfinite(v), "train_state sum '", k, "' = ", v);
    j["sums"][k] = v;
  }
  return j;
}

// Strict reader of the train_state JSON (rule 12): every key known, every type exact.
TrainState train_state_from_json(const std::string& text, const std::string& source) {
  const StrictJson parsed = parse_json_strict(text);
  if (!parsed.ok) reject(source, "train_state", parsed.error);
  const json& j = parsed.value;
  if (!j.is_object()) reject(source, "train_state", "not an object");
  TrainState t;
  std::set<std::string> seen;
  auto integer = [&](const char* key, int64_t& out, int64_t lo) {
    seen.insert(key);
    if (!j.contains(key)) reject(source, "train_state", std::string("missing ") + key);
    const json& v = j[key];
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX) ||
        v.get<int64_t>() < lo)
      reject(source, "train_state", std::string(key) + " must be an integer >= " + std::to_string(lo));
    out = v.get<int64_t>();
  };
  integer("step", t.step, 0);
  integer("epoch", t.epoch, 0);
  integer("epoch_position", t.epoch_position, 0);
  integer("batch_size", t.batch_size, 0);
  integer("threads", t.threads, 0);
  integer("skipped_steps", t.skipped_steps, 0);
  integer("consecutive_skips", t.consecutive_skips, 0);
  integer("best_step", t.best_step, -1);
  seen.insert("seed");
  if (!j.contains("seed") || !j["seed"].is_number_unsigned()) reject(source, "train_state", "seed must be an unsigned integer");
  t.seed = j["seed"].get<uint64_t>();
  seen.insert("finished");
  if (!j.contains("finished") || !j["finished"].is_boolean()) reject(source, "train_state", "finished must be a boolean");
  t.finished = j["finished"].get<bool>();
  seen.insert("best_eval_top1");
  if (!j.contains("best_eval_top1") || !j["best_eval_top1"].is_number())
    reject(source, "train_state", "best_eval_top1 must be a number");
  t.best_eval_top1 = j["best_eval_top1"].get<double>();
  for (const char* map_key : {"counters", "sums"}) {
    seen.insert(map_key);
    if (!j.contains(map_key) || !j[map_key].is_object())
      reject(source, "train_state", std::string(map_key) + " must be an object");
    for (const auto& item : j[map_key].items()) {
      if (!valid_tensor_name(item.key())) reject(source, "train_state", "bad name '" + item.key() + "'");
      if (std::string(map_key) == "counters") {
        if (!item.value().is_number_integer() ||
            (item.value().is_number_unsigned() && item.value().get<uint64_t>() > INT64_MAX))
          reject(source, "train_state", "counters." + item.key() + " must be an integer");
        t.counters[item.key()] = item.value().get<int64_t>();
      } else {
        if (!item.value().is_number()) reject(source, "train_state", "sums." + item.key() + " must be a number");
        t.sums[item.key()] = item.value().get<double>();
      }
    }
  }
  for (const auto& item : j.items())
    if (!seen.count(item.key())) reject(source, "train_state", "unknown key " + item.key());
  return t;
}

std::string floats_json(const std::vector<float>& v) {
  json a = json::array();
  for (float x : v) a.push_back(static_cast<double>(x));
  return a.dump();
}

std::vector<float> floats_from_json(const std::string& text, const std::string& source, const char* key) {
  const StrictJson p = parse_json_strict(text);
  if (!p.ok || !p.value.is_array()) reject(source, "metadata", std::string(key) + " must be a JSON array of numbers");
  std::vector<float> out;
  for (const json& x : p.value) {
    if (!x.is_number()) reject(source, "metadata", std::string(key) + " must be a JSON array of numbers");
    out.push_back(x.get<float>());
  }
  return out;
}

// Step number of "step-<digits>.safetensors", or -1.
int64_t step_of(const std::string& name) {
  const std::string prefix = "step-", suffix = ".safetensors";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

// (step, path) of the step files in dir, newest first.
std::vector<std::pair<int64_t, std::string>> list_step_files(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const int64_t step = step_of(it->path().filename().string());
    if (step >= 0 && it->is_regular_file(ec)) files.emplace_back(step, it->path().string());
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return files;
}

}  // namespace

std::string checkpoint_file_name(int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "step-%08" PRId64 ".safetensors", step);
  return buf;
}

std::string serialize_checkpoint(const CheckpointState& state) {
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (const auto& [name, t] : state.tensors) {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(t[i]))
        fail(ErrorKind::Diverged, "refusing to save a checkpoint at step ", state.train.step, ": tensor ",
             name, " holds a non-finite value at index ", i);
    tensors.emplace_back(name, &t);
  }
  std::map<std::string, std::string> meta;
  meta["format"] = kCheckpointFormat;
  meta["format_version"] = std::to_string(kCheckpointFormatVersion);
  meta["writer"] = std::string("vit-train ") + VIT_VERSION;
  meta["config"] = state.config_json;
  meta["classes"] = json(state.classes).dump(-1, ' ', false, json::error_handler_t::replace);
  meta["mean"] = floats_json(state.mean);
  meta["std"] = floats_json(state.std);
  if (!state.data_manifest.empty()) meta["data_manifest_sha256"] = state.data_manifest;
  meta["train_state"] = train_state_to_json(state.train).dump();
  return serialize_safetensors(tensors, meta, /*checksum=*/true);
}

CheckpointState parse_checkpoint(const std::string& bytes, const std::string& source,
                                 const CheckpointLoadOptions& options) {
  SafeTensorsReadOptions st;
  st.allow_nonfinite = options.allow_nonfinite;
  SafeTensors file = parse_safetensors(bytes, source, st);
  const auto& meta = file.metadata;
  auto need = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end()) reject(source, "metadata", std::string("missing __metadata__.") + key);
    return it->second;
  };
  // Rule 9: format and version.
  if (need("format") != kCheckpointFormat)
    reject(source, "format", "not a vit-train checkpoint (format '" + need("format").substr(0, 40) + "')");
  const std::string& version = need("format_version");
  if (version.empty() || version.size() > 6 || version.find_first_not_of("0123456789") != std::string::npos)
    reject(source, "format", "format_version '" + version.substr(0, 16) + "' is not a number");
  if (std::stoi(version) > kCheckpointFormatVersion)
    reject(source, "format", "written by a newer vit-train (format_version " + version + " > " +
                                 std::to_string(kCheckpointFormatVersion) + ")");
  CheckpointState state;
  state.config_json = need("config");
  try {
    (void)parse_config_string(state.config_json, source + " (stored config)");
  } catch (const Error& e) {
    reject(source, "config", e.what());
  }
  const StrictJson classes = parse_json_strict(need("classes"));
  if (!classes.ok || !classes.value.is_array()) reject(source, "metadata", "classes must be a JSON array of strings");
  for (const json& c : classes.value) {
    if (!c.is_string()) reject(source, "metadata", "classes must be a JSON array of strings");
    state.classes.push_back(c.get<std::string>());
  }
  state.mean = floats_from_json(need("mean"), source, "mean");
  state.std = floats_from_json(need("std"), source, "std");
  if (meta.count("data_manifest_sha256")) state.data_manifest = meta.at("data_manifest_sha256");
  // Rule 12: strict train_state.
  state.train = train_state_from_json(need("train_state"), source);
  // Rule 11 (second half): second moments are never negative.
  for (auto& [name, t] : file.tensors) {
    const size_t a = name.find('.'), b = a == std::string::npos ? a : name.find('.', a + 1);
    if (name.rfind("optim.", 0) == 0 && b != std::string::npos && name.compare(b, 3, ".v.") == 0)
      for (int64_t i = 0; i < t.numel(); ++i)
        if (t[i] < 0.0f)
          reject(source, "optimizer", "tensor " + name + " (second moment) is negative at index " + std::to_string(i));
    state.tensors.emplace(name, std::move(t));
  }
  return state;
}

CheckpointState load_checkpoint(const std::string& path, const CheckpointLoadOptions& options) {
  return parse_checkpoint(read_file(path, "checkpoint"), path, options);
}

void check_tensor_set(const CheckpointState& state, const std::map<std::string, Shape>& expected,
                      const std::string& source) {
  std::string missing, extra, wrong;
  auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  for (const auto& [name, shape] : expected) {
    const auto it = state.tensors.find(name);
    if (it == state.tensors.end()) add(missing, name);
    else if (it->second.shape() != shape)
      add(wrong, name + detail::concat(" ", it->second.shape(), " (expected ", shape, ")"));
  }
  for (const auto& [name, t] : state.tensors)
    if (!expected.count(name)) add(extra, name);
  if (missing.empty() && extra.empty() && wrong.empty()) return;
  std::string msg;
  if (!missing.empty()) msg += "missing: " + missing;
  if (!extra.empty()) msg += std::string(msg.empty() ? "" : "; ") + "unexpected: " + extra;
  if (!wrong.empty()) msg += std::string(msg.empty() ? "" : "; ") + "wrong shape: " + wrong;
  reject(source, "tensor set", msg);
}

CommitResult commit_checkpoint(const std::string& run_dir, const CheckpointState& state, int64_t keep_last) {
  VIT_CHECK(keep_last >= 1, "keep_last must be >= 1, got ", keep_last);
  const std::string dir = (fs::path(run_dir) / "checkpoints").string();
  ensure_dir(dir);
  remove_stale_temp_files(dir);
  const std::string bytes = serialize_checkpoint(state);
  check_free_space(dir, bytes.size() + bytes.size() / 10 + 4096);
  CommitResult result;
  const std::string name = checkpoint_file_name(state.train.step);
  result.path = (fs::path(dir) / name).string();
  write_file_atomic(result.path, bytes);
  // latest.json names the file just committed; its checksum is the safetensors one.
  ojson latest;
  latest["file"] = name;
  latest["step"] = state.train.step;
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  latest["data_xxh64"] = hex64(xxh64(bytes.data() + 8 + n, bytes.size() - 8 - n));
  write_file_atomic((fs::path(dir) / "latest.json").string(), latest.dump() + "\n");
  // Retention, only after the commit. Failures are warnings.
  int64_t kept = 0;
  for (const auto& [step, path] : list_step_files(dir)) {
    if (path == result.path) {
      ++kept;
      continue;
    }
    const bool future = step > state.train.step;
    if (!future && kept < keep_last) {
      ++kept;
      continue;
    }
    std::error_code ec;
    if (fs::remove(path, ec)) result.removed.push_back(path);
    else result.warnings.push_back("cannot delete old checkpoint " + path + ": " + ec.message());
  }
  return result;
}

std::string write_best(const std::string& run_dir, const CheckpointState& state) {
  ensure_dir(run_dir);
  const std::string bytes = serialize_checkpoint(state);
  check_free_space(run_dir, bytes.size() + bytes.size() / 10 + 4096);
  const std::string path = (fs::path(run_dir) / "best.safetensors").string();
  write_file_atomic(path, bytes);
  return path;
}

ResumeChoice find_resume_checkpoint(const std::string& run_dir) {
  ResumeChoice choice;
  const std::string dir = (fs::path(run_dir) / "checkpoints").string();
  for (const auto& [step, path] : list_step_files(dir)) {
    try {
      choice.state = load_checkpoint(path);
      choice.path = path;
      return choice;
    } catch (const Error& e) {
      choice.skipped.push_back(path + ": " + e.what());
    }
  }
  return choice;
}

int cleanup_stale_temps(const std::string& run_dir) {
  return remove_stale_temp_files(run_dir) +
         remove_stale_temp_files((fs::path(run_dir) / "checkpoints").string());
}

}  // namespace vit
