#include "dist/agree.hpp"

#include <new>
#include <string>

namespace vit {

int exception_code(const std::exception_ptr& e, std::string& message) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    message = err.what();
    return err.exit_code();
  } catch (const std::bad_alloc&) {
    message = "out of memory";
    return static_cast<int>(ErrorKind::OsError);
  } catch (const std::exception& err) {
    message = std::string("internal error: ") + err.what();
    return static_cast<int>(ErrorKind::Internal);
  } catch (...) {
    message = "internal error: unknown exception";
    return static_cast<int>(ErrorKind::Internal);
  }
}

void agree(Communicator& comm, const std::function<void()>& fn) {
  if (!comm.distributed()) {
    fn();
    return;
  }
  std::exception_ptr error;
  try {
    fn();
  } catch (const CollectiveError&) {
    throw;
  } catch (...) {
    error = std::current_exception();
  }
  int64_t first = error ? comm.rank() : comm.size();
  comm.allreduce_min(&first, 1);
  if (first == comm.size()) return;
  std::string message;
  int64_t code = error && first == comm.rank() ? exception_code(error, message) : 0;
  comm.broadcast(&code, sizeof code, static_cast<int>(first));
  broadcast_string(comm, message, static_cast<int>(first));
  const int r = static_cast<int>(first);
  throw CollectiveError(static_cast<ErrorKind>(code), r == comm.rank() ? message : "rank " + std::to_string(r) + ": " + message, r);
}

void fail_together(Communicator& comm, ErrorKind kind, const std::string& message) {
  throw CollectiveError(kind, message, comm.rank());
}

}  // namespace vit
