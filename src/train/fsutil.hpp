// File-system helpers for the run directory: whole-file reads with typed errors, atomic
// replacement (temp file + fsync + rename + directory fsync), free-space pre-checks, stale temp
// clean-up and the run-directory lock. POSIX only. Not a general I/O layer: no buffering, no
// retries; every failure becomes a vit::Error naming the path and strerror(errno).
#pragma once
#include <cstdint>
#include <string>

namespace vit {

// Whole file as bytes. Missing, a directory or unreadable -> NoInput ("cannot open <what> '<path>'").
std::string read_file(const std::string& path, const std::string& what = "file");

// mkdir -p; failure (a file in the way, no permission) -> CantCreate.
void ensure_dir(const std::string& dir);

// fsync a directory so a rename inside it is durable. Failure -> Io.
void fsync_dir(const std::string& dir);

// Replace `path` atomically with `bytes`: write `<dir>/.<name>.tmp.<pid>`, check every write,
// fsync, close, rename over `path`, fsync the directory. On any error (ENOSPC, EFBIG, EIO) the temp
// file is removed, `path` is untouched, and Error(Io, "writing <path>: <strerror>") is thrown.
// SIGXFSZ must be ignored by the process for EFBIG to arrive as an error (the mains do this).
void write_file_atomic(const std::string& path, const std::string& bytes);

// Throws Error(Io, "need X MiB, have Y MiB ...") when the file system holding `dir` has fewer than
// `bytes` available. The environment variable VIT_FAULT_FREE_BYTES, when set, replaces the
// measured free space (fault-injection hook for tests).
void check_free_space(const std::string& dir, uint64_t bytes);

// Remove `.*.tmp.<pid>` files in `dir` whose pid is no longer alive (left by a killed writer).
// Returns how many were removed; errors are ignored (best effort).
int remove_stale_temp_files(const std::string& dir);

// Exclusive lock on <dir>/.lock (flock, released by the kernel when the process dies). A second
// holder, in this process or another, gets Error(CantCreate, "run directory <dir> is locked by pid
// N"). The directory must exist. The lock file holds the holder's pid for that message.
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int fd_ = -1;
};

}  // namespace vit
