// The process-group interface the trainer sees: rank, size, and the handful of collectives
// data-parallel training needs. LocalComm (world of one, every collective a no-op) is always
// built; MpiComm (dist/mpi_comm.cpp) only with the CMake option VIT_MPI. Not a transport of its
// own and not thread-safe: one thread (the training thread) makes every call, in the same
// order on every rank.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace vit {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks sharing this rank's host (for the threads-per-rank policy); 1 for LocalComm.
  virtual int local_size() const = 0;
  virtual const char* backend() const = 0;

  // In-place element-wise sums over all ranks. Every rank gets the same values (for two ranks
  // bitwise, since a + b == b + a; see grad_reducer.hpp for more ranks).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // Element-wise min / max over all ranks, in place.
  virtual void allreduce_min(int64_t* data, int64_t n) = 0;
  virtual void allreduce_max(int64_t* data, int64_t n) = 0;
  virtual void allreduce_min(uint64_t* data, int64_t n) = 0;
  virtual void allreduce_max(uint64_t* data, int64_t n) = 0;
  // `bytes` bytes at `data` on `root` are copied to every other rank.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (MPI_Abort); LocalComm: std::_Exit(code).
  [[noreturn]] virtual void abort(int code) = 0;

  bool distributed() const { return size() > 1; }
  bool lead() const { return rank() == 0; }
};

class LocalComm final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  const char* backend() const override { return "local"; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_min(int64_t*, int64_t) override {}
  void allreduce_max(int64_t*, int64_t) override {}
  void allreduce_min(uint64_t*, int64_t) override {}
  void allreduce_max(uint64_t*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

// The process-wide single-process communicator (what run_training uses when given none).
Communicator& local_comm();

// Whether this binary was built with MPI support (VIT_MPI).
bool mpi_built();
// Whether the process was started by an MPI launcher (mpirun/mpiexec/srun: Open MPI, PMI or
// PMIx variables in the environment).
bool launched_by_mpi();
// MpiComm (MPI_Init_thread FUNNELED, finalized by the destructor) when built with MPI and
// started by a launcher, else a LocalComm. VIT_DIST=local in the environment forces LocalComm.
// Throws Error(Usage) when a launcher started us but the binary has no MPI, with more than
// one rank in the launcher's environment (each copy would train alone).
std::unique_ptr<Communicator> make_communicator(int* argc, char*** argv);

// Broadcast a string from root (length first).
void broadcast_string(Communicator& comm, std::string& s, int root);

}  // namespace vit
