#include "dist/threads.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>

namespace vit {

ThreadPlan plan_rank_threads(int requested, int local_ranks, int affinity, int host) {
  ThreadPlan p;
  local_ranks = std::max(1, local_ranks);
  if (requested > 0) p.threads = requested;
  else if (affinity < host) p.threads = std::max(1, affinity);
  else p.threads = std::max(1, host / local_ranks);
  if (static_cast<long>(local_ranks) * p.threads > host)
    p.warning = std::to_string(local_ranks) + " ranks x " + std::to_string(p.threads) + " threads on a host with " +
                std::to_string(host) + " cores: oversubscribed (slow); lower --threads or the ranks per host";
  return p;
}

int affinity_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return host_cores();
  return std::max(1, CPU_COUNT(&set));
}

int host_cores() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace vit
