// The decode-once pass and the uint8 cache. Decoding runs in parallel_for (static schedule):
// each file writes only its own slot and its own status, nothing throws inside the region, and
// errors are reported afterwards in file order, so logs and results do not depend on threads.
#include "data/dataset.hpp"

#include <spdlog/spdlog.h>

#include <cstring>
#include <utility>

#include "core/error.hpp"
#include <atomic>

#include "core/parallel.hpp"

namespace vit {

ImageDataset::ImageDataset(ImageFolder folder, const DataSettings& settings, const std::function<bool()>& cancelled)
    : folder_(std::move(folder)), settings_(settings), size_(settings.image_size), channels_(settings.channels) {
  if (channels_ != 1 && channels_ != 3) fail(ErrorKind::Config, "data.channels must be 1 or 3, got ", channels_);
  if (size_ <= 0 || size_ > 8192) fail(ErrorKind::Config, "data.image_size must be in [1, 8192], got ", size_);
  const int64_t n = static_cast<int64_t>(folder_.samples.size());
  const int64_t bytes = n * sample_bytes();
  cached_ = bytes <= settings.cache_limit_mb * (int64_t{1} << 20);

  if (folder_.skipped_files > 0)
    spdlog::info("{}: skipped {} non-image file(s) (only .png/.jpg/.jpeg are read), e.g. '{}'", folder_.root,
                 folder_.skipped_files, folder_.skipped_examples.empty() ? "" : folder_.skipped_examples[0]);

  // Pass 1: decode everything. Cached: into the final buffer, slot = file index. Streaming: the
  // pixels are dropped and only the verdict is kept.
  std::vector<uint8_t> ok(static_cast<size_t>(n), 0);
  std::vector<std::string> reasons(static_cast<size_t>(n));
  try {
    if (cached_) cache_.resize(static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    fail(ErrorKind::OsError, "out of memory allocating the ", bytes >> 20, " MiB image cache");
  }
  const int64_t sb = sample_bytes();
  std::atomic<bool> stop{false};
  parallel_for(0, n, [&](int64_t i) {
    if (stop.load(std::memory_order_relaxed)) return;
    if (cancelled && i % 32 == 0 && cancelled()) {
      stop.store(true);
      return;
    }
    DecodeResult r = load_image_file(folder_.samples[static_cast<size_t>(i)].path, settings_);
    if (r.ok) {
      if (cached_) std::memcpy(cache_.data() + i * sb, r.image.pixels.data(), static_cast<size_t>(sb));
      ok[static_cast<size_t>(i)] = 1;
    } else {
      reasons[static_cast<size_t>(i)] = std::move(r.reason);
    }
  });

  if (stop.load()) throw Interrupted();

  // Compact: keep good samples in file order (moving cache slots forward in place).
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const ImageSample& s = folder_.samples[static_cast<size_t>(i)];
    if (!ok[static_cast<size_t>(i)]) {
      if (bad_.size() < 20) spdlog::warn("skipping bad image '{}': {}", s.path, reasons[static_cast<size_t>(i)]);
      bad_.push_back({s.path, std::move(reasons[static_cast<size_t>(i)])});
      continue;
    }
    if (cached_ && kept != i) std::memmove(cache_.data() + kept * sb, cache_.data() + i * sb, static_cast<size_t>(sb));
    labels_.push_back(s.label);
    source_.push_back(i);
    ++kept;
  }
  if (cached_) {
    cache_.resize(static_cast<size_t>(kept * sb));
    cache_.shrink_to_fit();
  }
  const int64_t nbad = static_cast<int64_t>(bad_.size());
  if (nbad > 20) spdlog::warn("{} more bad images not listed ({} in all)", nbad - 20, nbad);
  if (nbad > 0 && (kept == 0 || static_cast<double>(nbad) > settings.max_bad_fraction * static_cast<double>(n)))
    fail(ErrorKind::Data, folder_.root, ": ", nbad, " of ", n, " images could not be decoded (max_bad_fraction ",
         settings.max_bad_fraction, "); first: '", bad_[0].path, "': ", bad_[0].reason);

  if (cached_)
    spdlog::info("{}: {} images ({} classes) decoded to {}x{}x{} uint8, cache {:.2f} MiB in RAM", folder_.root, kept,
                 folder_.classes.size(), size_, size_, channels_, static_cast<double>(cache_.size()) / (1 << 20));
  else
    spdlog::info("{}: {} images ({} classes) need {:.1f} MiB > cache_limit_mb {}: streaming from disk", folder_.root,
                 kept, folder_.classes.size(), static_cast<double>(kept * sb) / (1 << 20), settings.cache_limit_mb);
}

bool ImageDataset::read(int64_t i, uint8_t* dst, std::string& reason) const noexcept {
  const int64_t sb = sample_bytes();
  if (cached_) {
    std::memcpy(dst, cache_.data() + i * sb, static_cast<size_t>(sb));
    return true;
  }
  DecodeResult r = load_image_file(path(i), settings_);
  if (!r.ok) {
    reason = std::move(r.reason);
    return false;
  }
  std::memcpy(dst, r.image.pixels.data(), static_cast<size_t>(sb));
  return true;
}

}  // namespace vit
