#include "train/progress.hpp"

#include <cstdio>
#include <string>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace vit {

namespace {
std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const long s = static_cast<long>(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}
}  // namespace

Progress::Progress(int64_t total_steps, int64_t log_every, bool quiet)
    : total_(total_steps), every_(log_every > 0 ? log_every : 50), quiet_(quiet),
      tty_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::update(int64_t epoch, int64_t step, double loss, double lr, double img_per_s) {
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) {
    first_step_ = step - 1;
    start_ = now;
  }
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const int64_t done = step - first_step_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total_ - step) : -1;
  if (tty_) {
    if (std::chrono::duration<double>(now - last_draw_).count() < 0.1 && step < total_) return;
    last_draw_ = now;
    const int width = 24;
    const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : 0;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] ep %lld step %lld/%lld loss %.4f lr %.2e %.0f img/s ETA %s \x1b[K", bar.c_str(),
                 static_cast<long long>(epoch), static_cast<long long>(step), static_cast<long long>(total_),
                 loss, lr, img_per_s, format_eta(eta).c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else if (step % every_ == 0 || step == total_) {
    spdlog::info("epoch {} step {}/{} loss {:.4f} lr {:.3e} {:.0f} img/s ETA {}", epoch, step, total_, loss, lr,
                 img_per_s, format_eta(eta));
  }
}

void Progress::finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace vit
