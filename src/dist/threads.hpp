// OpenMP threads per rank. Under mpirun the default binding pins each rank to one core, and
// OpenMP then starts one thread; with --bind-to none every rank would start one thread per
// core and the ranks of one host would oversubscribe it. This picks a count and says when the
// layout oversubscribes. Pure policy plus a probe of the process's CPU affinity.
#pragma once
#include <string>

namespace vit {

struct ThreadPlan {
  int threads = 1;
  std::string warning;  // non-empty: ranks x threads exceed the host's cores
};

// requested > 0: that many. Else, when the launcher bound us to fewer cores than the host has:
// those cores (affinity_cores); unbound: host_cores / local_ranks (at least 1).
ThreadPlan plan_rank_threads(int requested, int local_ranks, int affinity_cores, int host_cores);

int affinity_cores();  // CPUs this process may run on (sched_getaffinity), >= 1
int host_cores();      // online CPUs of the host, >= 1

}  // namespace vit
