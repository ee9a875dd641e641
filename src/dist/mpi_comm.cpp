// MpiComm: Communicator over MPI_COMM_WORLD (C API only; OMPI_SKIP_MPICXX keeps the deprecated
// C++ bindings out). Compiled only with the CMake option VIT_MPI. Counts larger than INT_MAX are
// sent in pieces. Errors of MPI itself abort (MPI's default handler): there is nothing to
// recover once a collective fails.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <memory>

#include "core/error.hpp"
#include "dist/communicator.hpp"

namespace vit {
namespace {

class MpiComm final : public Communicator {
 public:
  MpiComm(int* argc, char*** argv) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      // FUNNELED: only the training thread calls MPI (OpenMP workers and the loader never do).
      MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
      if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        fail(ErrorKind::OsError, "the MPI library gives thread level ", provided, ", vit-train needs FUNNELED");
      }
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  }
  ~MpiComm() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  const char* backend() const override { return "mpi"; }

  void allreduce_sum(float* d, int64_t n) override { reduce(d, n, MPI_FLOAT, MPI_SUM, sizeof(float)); }
  void allreduce_sum(double* d, int64_t n) override { reduce(d, n, MPI_DOUBLE, MPI_SUM, sizeof(double)); }
  void allreduce_min(int64_t* d, int64_t n) override { reduce(d, n, MPI_INT64_T, MPI_MIN, 8); }
  void allreduce_max(int64_t* d, int64_t n) override { reduce(d, n, MPI_INT64_T, MPI_MAX, 8); }
  void allreduce_min(uint64_t* d, int64_t n) override { reduce(d, n, MPI_UINT64_T, MPI_MIN, 8); }
  void allreduce_max(uint64_t* d, int64_t n) override { reduce(d, n, MPI_UINT64_T, MPI_MAX, 8); }

  void broadcast(void* data, int64_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += INT_MAX)
      MPI_Bcast(p + off, static_cast<int>(std::min<int64_t>(INT_MAX, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD);
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // not reached
  }

 private:
  static void reduce(void* data, int64_t n, MPI_Datatype type, MPI_Op op, size_t elem) {
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < n; off += INT_MAX)
      MPI_Allreduce(MPI_IN_PLACE, p + static_cast<size_t>(off) * elem, static_cast<int>(std::min<int64_t>(INT_MAX, n - off)),
                    type, op, MPI_COMM_WORLD);
  }

  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool owns_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_comm(int* argc, char*** argv) { return std::make_unique<MpiComm>(argc, argv); }

}  // namespace vit
