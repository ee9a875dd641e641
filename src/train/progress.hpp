// Human progress on stderr: a one-line bar redrawn in place when stderr is a terminal, plain
// periodic log lines otherwise (logs, CI), nothing with --quiet. Never a script interface.
#pragma once
#include <chrono>
#include <cstdint>

namespace vit {

class Progress {
 public:
  Progress(int64_t total_steps, int64_t log_every, bool quiet);
  // Called after every optimizer step.
  void update(int64_t epoch, int64_t step, double loss, double lr, double img_per_s);
  void finish();  // ends the bar line

 private:
  int64_t total_, every_;
  bool quiet_, tty_, drawn_ = false;
  int64_t first_step_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace vit
