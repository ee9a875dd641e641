// Failure agreement across ranks. A collective that some ranks enter and others skip (because
// one threw) hangs the job, so the trainer runs every stretch of local work that can throw
// inside agree(): afterwards each rank knows whether any rank failed, and all of them throw the
// same CollectiveError (the lowest failing rank's kind and message), so they leave the run
// together and exit with the same code. Not for errors thrown while a collective is in flight.
#pragma once
#include <functional>

#include "core/error.hpp"
#include "dist/communicator.hpp"

namespace vit {

// An error every rank threw at the same point (so MPI can be finalized cleanly).
class CollectiveError : public Error {
 public:
  CollectiveError(ErrorKind kind, const std::string& message, int failed_rank)
      : Error(kind, message), failed_rank_(failed_rank) {}
  int failed_rank() const { return failed_rank_; }

 private:
  int failed_rank_;
};

// Runs fn(). One rank: exceptions pass through unchanged (no collective, no wrapping).
// Several ranks: one int64 allreduce when nobody failed; otherwise the failing rank's exit
// code and message are broadcast and every rank throws CollectiveError ("rank r: message" on
// the others). A CollectiveError thrown inside fn is rethrown as is (all ranks threw it).
void agree(Communicator& comm, const std::function<void()>& fn);

// Throws CollectiveError(kind, message) on every rank: for conditions all ranks evaluated from
// the same reduced values (divergence, checksum mismatch).
[[noreturn]] void fail_together(Communicator& comm, ErrorKind kind, const std::string& message);

// The exit code and one-line message an escaping exception maps to (as the CLI does).
int exception_code(const std::exception_ptr& e, std::string& message);

}  // namespace vit
