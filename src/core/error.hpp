// Typed errors. The library throws; only the CLI mains turn an ErrorKind into an exit code.
// VIT_CHECK reports a caller's mistake (shapes, arguments) with the values that were wrong;
// VIT_ASSERT marks our own invariants. Neither is used inside OpenMP regions or kernels.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <cstdint>

namespace vit {

// The exit code each kind maps to (PRODUCT.md "Exit codes").
enum class ErrorKind : int {
  Diverged = 3,     // non-finite loss or gradients
  Usage = 64,       // bad command line
  Data = 65,        // bad data set or bad checkpoint
  NoInput = 66,     // a file or folder that must exist does not
  Internal = 70,    // a bug: an invariant or shape check failed
  OsError = 71,     // out of memory, thread creation
  CantCreate = 73,  // output folder cannot be created or is locked
  Io = 74,          // write failed: disk full, EIO
  TimeLimit = 75,   // --max-wall-time reached (checkpoint saved)
  Config = 78,      // bad config file or override
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

// Thrown when a long loop (decoding, evaluation) stops early because a stop was requested
// (SIGINT/SIGTERM): not an error; the main exits by the signal.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

using Shape = std::vector<int64_t>;
std::ostream& operator<<(std::ostream& os, const Shape& shape);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

// Throw an Error of the given kind with a message built from the streamed arguments.
template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, const Args&... args) {
  throw Error(kind, detail::concat(args...));
}

// Runs f(); an Error it throws is rethrown, same kind, as "<source>: <message>" (the file a
// state dict or optimizer state came from, for errors raised where the file is not known).
template <typename F>
void with_source(const std::string& source, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    throw Error(e.kind(), source + ": " + e.what());
  }
}

}  // namespace vit

#define VIT_CHECK(cond, ...)                                                                   \
  do {                                                                                         \
    if (!(cond)) ::vit::detail::check_failed(__FILE__, __LINE__, #cond,                        \
                                             ::vit::detail::concat(__VA_ARGS__)); \
  } while (0)
#define VIT_ASSERT(cond) VIT_CHECK(cond, "internal invariant")
