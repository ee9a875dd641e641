// LocalComm, the launcher detection and the factory. The MPI implementation is in mpi_comm.cpp,
// compiled only with VIT_MPI (which defines VIT_HAVE_MPI for this file too).
#include "dist/communicator.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace vit {

#ifdef VIT_HAVE_MPI
std::unique_ptr<Communicator> make_mpi_comm(int* argc, char*** argv);  // mpi_comm.cpp
#endif

void LocalComm::abort(int code) { std::_Exit(code); }

Communicator& local_comm() {
  static LocalComm comm;
  return comm;
}

bool mpi_built() {
#ifdef VIT_HAVE_MPI
  return true;
#else
  return false;
#endif
}

#ifndef VIT_HAVE_MPI
namespace {
int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : -1;
}
}  // namespace
#endif

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

std::unique_ptr<Communicator> make_communicator(int* argc, char*** argv) {
  const char* force = std::getenv("VIT_DIST");
  const bool local = force && std::strcmp(force, "local") == 0;
  if (!local && launched_by_mpi()) {
#ifdef VIT_HAVE_MPI
    return make_mpi_comm(argc, argv);
#else
    (void)argc, (void)argv;
    const int world = std::max(env_int("OMPI_COMM_WORLD_SIZE"), env_int("PMI_SIZE"));
    if (world > 1)
      fail(ErrorKind::Usage, "started by an MPI launcher with ", world,
           " processes, but this vit-train was built without MPI (configure with -DVIT_MPI=ON and "
           "libopenmpi-dev installed); set VIT_DIST=local to run the copies independently");
#endif
  }
  return std::make_unique<LocalComm>();
}

void broadcast_string(Communicator& comm, std::string& s, int root) {
  if (!comm.distributed()) return;
  int64_t n = static_cast<int64_t>(s.size());
  comm.broadcast(&n, sizeof n, root);
  s.resize(static_cast<size_t>(n));
  if (n > 0) comm.broadcast(s.data(), n, root);
}

}  // namespace vit
