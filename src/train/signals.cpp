#include "train/signals.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <unistd.h>

namespace vit {
namespace {
std::atomic<int> g_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (g_signal.load() != 0) {  // a second Ctrl-C: stop right now, by the same signal
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
  g_signal.store(sig);
}
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout becomes an EPIPE write error (exit 74)
}

int stop_signal() { return g_signal.load(); }
void request_stop(int sig) { g_signal.store(sig); }

void die_by_signal(int sig) {
  std::signal(sig, SIG_DFL);
  std::raise(sig);
  _exit(128 + sig);  // not reached unless the signal is blocked
}

}  // namespace vit
