// SIGINT/SIGTERM handling for graceful stops: the handler only records the signal; the training
// loop (and eval/warm-up/data loops) poll stop_signal() and, once the run is saved, die by the same
// signal with its default action (Cracauer's rule) so a calling shell loop sees 130/143.
#pragma once

namespace vit {

void install_stop_handlers();
int stop_signal();          // 0 when no stop was requested, else SIGINT or SIGTERM
void request_stop(int sig); // for tests
[[noreturn]] void die_by_signal(int sig);

}  // namespace vit
