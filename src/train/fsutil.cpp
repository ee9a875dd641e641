// POSIX implementation of the run-directory file helpers (see fsutil.hpp). Every syscall result
// is checked; errno is captured before any clean-up call can overwrite it.
#include "train/fsutil.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/error.hpp"

namespace vit {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string parent_dir(const std::string& path) {
  const std::string p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

// Write all of `bytes` to fd, retrying on EINTR and short writes. Returns 0 or an errno.
int write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

std::string read_file(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(ErrorKind::NoInput, "cannot open ", what, " '", path, "': ", errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    fail(ErrorKind::NoInput, "cannot open ", what, " '", path, "': ",
         err ? errno_text(err) : std::string("not a regular file"));
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      fail(ErrorKind::NoInput, "cannot read ", what, " '", path, "': ", errno_text(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void ensure_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(ErrorKind::CantCreate, "cannot create directory '", dir, "': ", ec.message());
  if (!std::filesystem::is_directory(dir, ec))
    fail(ErrorKind::CantCreate, "cannot create directory '", dir, "': a file is in the way");
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(ErrorKind::Io, "cannot open directory '", dir, "' to sync it: ", errno_text(errno));
  if (::fsync(fd) != 0 && errno != EINVAL) {  // EINVAL: the file system cannot sync directories
    const int err = errno;
    ::close(fd);
    fail(ErrorKind::Io, "syncing directory '", dir, "': ", errno_text(err));
  }
  ::close(fd);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::filesystem::path p(path);
  const std::string dir = parent_dir(path);
  const std::string tmp = (std::filesystem::path(dir) /
                           ("." + p.filename().string() + ".tmp." + std::to_string(::getpid())))
                              .string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(ErrorKind::Io, "writing ", path, ": cannot create temp file: ", errno_text(errno));
  int err = write_all(fd, bytes.data(), bytes.size());
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    fail(ErrorKind::Io, "writing ", path, ": ", errno_text(err));
  }
  fsync_dir(dir);
}

void check_free_space(const std::string& dir, uint64_t bytes) {
  uint64_t avail = 0;
  if (const char* fake = std::getenv("VIT_FAULT_FREE_BYTES")) {
    avail = std::strtoull(fake, nullptr, 10);
  } else {
    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) != 0) return;  // cannot tell: let the writes decide
    avail = static_cast<uint64_t>(vfs.f_bavail) * static_cast<uint64_t>(vfs.f_frsize);
  }
  if (avail < bytes) {
    const double mib = 1024.0 * 1024.0;
    char msg[160];
    std::snprintf(msg, sizeof msg, "need %.1f MiB, have %.1f MiB", static_cast<double>(bytes) / mib,
                  static_cast<double>(avail) / mib);
    fail(ErrorKind::Io, "not enough free space in '", dir, "': ", msg);
  }
}

int remove_stale_temp_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const size_t at = name.rfind(".tmp.");
    if (name.size() < 2 || name[0] != '.' || at == std::string::npos) continue;
    const std::string pid_text = name.substr(at + 5);
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    const bool alive = pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (alive) continue;  // a live writer (our own included) may still be using it
    if (::unlink((std::filesystem::path(dir) / name).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

RunLock::RunLock(const std::string& dir) : dir_(dir) {
  const std::string path = (std::filesystem::path(dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(ErrorKind::CantCreate, "cannot create lock file '", path, "': ", errno_text(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      fail(ErrorKind::CantCreate, "run directory '", dir, "' is locked by pid ", holder,
           " (another vit-train is using it)");
    }
    fail(ErrorKind::CantCreate, "cannot lock '", path, "': ", errno_text(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // The lock is held; the pid is only for messages, so a failed write is not fatal.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace vit
