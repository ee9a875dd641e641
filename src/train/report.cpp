#include "train/report.hpp"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

namespace vit {

std::string dump_json(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool valid_utf8(const std::string& s) {
  try {
    (void)Json(s).dump();  // the strict serialiser: the same rule as config.json's writer
    return true;
  } catch (const Json::type_error&) {
    return false;
  }
}

namespace {
void write_line(std::FILE* f, const std::string& line, const std::string& what) {
  if (std::fputs(line.c_str(), f) < 0 || std::fputc('\n', f) == EOF || std::fflush(f) != 0)
    fail(ErrorKind::Io, "cannot write ", what, ": ", std::strerror(errno));
}

Json number_or_null(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}
}  // namespace

void JsonLines::emit(const std::string& event, const Json& fields) {
  // RELIABILITY.md §2: EPIPE on stdout means the consumer has gone (`| head -n1`): stop emitting,
  // warn once, keep training (checkpoints still go to disk). Any other write error throws Io (74).
  static std::atomic<bool> stdout_gone{false};
  if (stream_ == stdout && stdout_gone.load()) return;
  Json j = {{"schema", 1}, {"event", event}};
  for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
  try {
    write_line(stream_, dump_json(j), "stdout");
  } catch (const Error&) {
    if (stream_ != stdout || errno != EPIPE) throw;
    std::clearerr(stream_);
    if (!stdout_gone.exchange(true)) spdlog::warn("stdout was closed by its reader (EPIPE): no more JSON lines, the run goes on");
  }
}

Json final_record_json(const FinalRecord& r) {
  Json j = {{"status", r.status},
            {"exit_code", r.exit_code},
            {"best_eval_top1", number_or_null(r.best_eval_top1)},
            {"final_eval_top1", number_or_null(r.final_eval_top1)},
            {"steps", r.steps},
            {"checkpoint", r.checkpoint ? Json(*r.checkpoint) : Json(nullptr)},
            {"resumed_from", r.resumed_from ? Json(*r.resumed_from) : Json(nullptr)},
            {"resume_exact", r.resume_exact}};
  for (auto it = r.extra.begin(); it != r.extra.end(); ++it) j[it.key()] = it.value();
  if (r.error)
    j["error"] = {{"kind", error_kind_name(r.error->kind())}, {"message", r.error->what()}};
  else
    j["error"] = nullptr;
  return j;
}

RunFiles::RunFiles(const std::string& run_dir) : dir_(run_dir) {
  const std::string mpath = run_dir + "/metrics.jsonl", spath = run_dir + "/summary.csv";
  struct stat st {};
  const bool new_summary = stat(spath.c_str(), &st) != 0 || st.st_size == 0;
  metrics_ = std::fopen(mpath.c_str(), "a");
  summary_ = std::fopen(spath.c_str(), "a");
  if (!metrics_ || !summary_) fail(ErrorKind::CantCreate, "cannot open ", mpath, " / ", spath, ": ", std::strerror(errno));
  if (new_summary)
    write_line(summary_, "epoch,train_loss,train_top1,eval_loss,eval_top1,eval_top5,lr,img_per_s,time_s", spath);
}

RunFiles::~RunFiles() {
  if (metrics_) std::fclose(metrics_);
  if (summary_) std::fclose(summary_);
}

void RunFiles::metric(const std::string& event, const Json& fields) {
  Json j = {{"schema", 1}, {"event", event}};
  for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
  write_line(metrics_, dump_json(j), dir_ + "/metrics.jsonl");
}

void RunFiles::summary(const EpochRow& r) {
  auto opt = [](const std::optional<double>& v) {
    return v && std::isfinite(*v) ? std::to_string(*v) : std::string();
  };
  char buf[512];
  std::snprintf(buf, sizeof buf, "%lld,%.6f,%.4f,%s,%s,%s,%.8g,%.1f,%.2f", static_cast<long long>(r.epoch),
                r.train_loss, r.train_top1, opt(r.eval_loss).c_str(), opt(r.eval_top1).c_str(),
                opt(r.eval_top5).c_str(), r.lr, r.img_per_s, r.time_s);
  write_line(summary_, buf, dir_ + "/summary.csv");
}

}  // namespace vit
