#include "core/error.hpp"

namespace vit {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Diverged: return "diverged";
    case ErrorKind::Usage: return "usage";
    case ErrorKind::Data: return "data";
    case ErrorKind::NoInput: return "no_input";
    case ErrorKind::Internal: return "internal";
    case ErrorKind::OsError: return "os_error";
    case ErrorKind::CantCreate: return "cant_create";
    case ErrorKind::Io: return "io";
    case ErrorKind::TimeLimit: return "time_limit";
    case ErrorKind::Config: return "config";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, const Shape& shape) {
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  return os << ']';
}

namespace detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  throw Error(ErrorKind::Internal, concat(msg, " (check `", cond, "` failed at ", file, ":", line, ")"));
}
}  // namespace detail
}  // namespace vit
