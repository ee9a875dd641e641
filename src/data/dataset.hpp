// A decoded image dataset: every file of a scanned ImageFolder is decoded once (in parallel) to
// the configured size and channel count. The uint8 pixels are kept in one compact RAM cache when
// they fit data.cache_limit_mb; otherwise only the list of good files is kept and samples are
// decoded again on demand (streaming). Both modes give identical pixels. Batching and shuffling
// live in data/loader.hpp.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/decode.hpp"
#include "data/image_folder.hpp"
#include "data/settings.hpp"

namespace vit {

struct BadFile {
  std::string path;
  std::string reason;
};

class ImageDataset {
 public:
  // Decodes all files of `folder`. Bad files are logged (spdlog warn: path and reason) and
  // dropped; more than settings.max_bad_fraction of them (or all) throws Error(Data).
  // Throws Error(Config) for channels other than 1/3 or a non-positive image_size.
  // `cancelled` (may be empty) is polled while decoding; when it returns true the constructor
  // throws vit::Interrupted within a few files.
  ImageDataset(ImageFolder folder, const DataSettings& settings, const std::function<bool()>& cancelled = {});

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }  // usable samples
  int64_t height() const { return size_; }
  int64_t width() const { return size_; }
  int64_t channels() const { return channels_; }
  int64_t sample_bytes() const { return size_ * size_ * channels_; }
  bool cached() const { return cached_; }
  int64_t cache_bytes() const { return static_cast<int64_t>(cache_.size()); }

  const ImageFolder& folder() const { return folder_; }
  const std::vector<std::string>& classes() const { return folder_.classes; }
  const std::vector<BadFile>& bad_files() const { return bad_; }
  int32_t label(int64_t i) const { return labels_[static_cast<size_t>(i)]; }
  // Index of usable sample i in folder().samples (stable key for augmentation and reports).
  int64_t source_index(int64_t i) const { return source_[static_cast<size_t>(i)]; }
  const std::string& path(int64_t i) const { return folder_.samples[static_cast<size_t>(source_index(i))].path; }

  // Writes sample i (H x W x C uint8) to dst: a copy from the cache or a fresh decode. False with
  // a reason when a streamed file no longer decodes. Safe to call from several threads.
  bool read(int64_t i, uint8_t* dst, std::string& reason) const noexcept;

 private:
  ImageFolder folder_;
  DataSettings settings_;
  int64_t size_ = 0, channels_ = 0;
  bool cached_ = false;
  std::vector<uint8_t> cache_;   // [size(), H, W, C] when cached_
  std::vector<int32_t> labels_;  // [size()]
  std::vector<int64_t> source_;  // [size()]
  std::vector<BadFile> bad_;
};

}  // namespace vit
