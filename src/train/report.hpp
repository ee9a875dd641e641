// Machine-readable output. stdout carries only JSON Lines (schema 1), one object per event,
// flushed per line; the last line is always the final record. The run directory gets
// metrics.jsonl (the same events) and summary.csv (one row per epoch, timm's columns plus ours).
// Timing fields never go to stdout, so two identical runs print identical stdout.
#pragma once
#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace vit {

using Json = nlohmann::ordered_json;

// Serialise without ever throwing on bad UTF-8 (file names): invalid bytes become U+FFFD.
std::string dump_json(const Json& j);
// Whether s is valid UTF-8, i.e. can stand in JSON text as it is (config values must: config.json
// records them; a path with other bytes is refused rather than silently changed).
bool valid_utf8(const std::string& s);

class JsonLines {
 public:
  explicit JsonLines(std::FILE* stream) : stream_(stream) {}
  // Writes {"schema":1, "event":event, ...fields}; a failed write throws Error(Io).
  void emit(const std::string& event, const Json& fields);

 private:
  std::FILE* stream_;
};

// What every binary prints last.
struct FinalRecord {
  std::string status = "error";  // completed|diverged|interrupted|time_limit|error|already_complete
  int exit_code = 70;
  std::optional<double> best_eval_top1, final_eval_top1;
  int64_t steps = 0;
  std::optional<std::string> checkpoint, resumed_from;
  bool resume_exact = true;
  std::optional<Error> error;
  Json extra = Json::object();  // binary-specific fields (vit-eval's metrics)
};
Json final_record_json(const FinalRecord& r);

// Appends to <run>/metrics.jsonl and <run>/summary.csv; both are flushed after every write.
class RunFiles {
 public:
  explicit RunFiles(const std::string& run_dir);
  ~RunFiles();
  RunFiles(const RunFiles&) = delete;
  RunFiles& operator=(const RunFiles&) = delete;
  void metric(const std::string& event, const Json& fields);
  struct EpochRow {
    int64_t epoch;
    double train_loss, train_top1;
    std::optional<double> eval_loss, eval_top1, eval_top5;
    double lr, img_per_s, time_s;
  };
  void summary(const EpochRow& row);

 private:
  std::FILE* metrics_ = nullptr;
  std::FILE* summary_ = nullptr;
  std::string dir_;
};

}  // namespace vit
