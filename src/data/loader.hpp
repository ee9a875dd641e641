// Batches from an ImageDataset: float [B, C, H, W] normalised by mean/std plus int32 labels.
// Training order is a Fisher-Yates shuffle driven by Rng(seed, Shuffle, epoch), augmentation by
// Rng(seed, Augment, epoch, file index), so batch (epoch, index) is a pure function of those
// numbers: a resume at (epoch, index) continues exactly, for any thread count. next() keeps one
// batch prepared ahead on a background thread. Not a sampler for several ranks (yet).
#pragma once
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "core/tensor.hpp"
#include "data/dataset.hpp"
#include "data/settings.hpp"

namespace vit {

struct LoaderOptions {
  int64_t batch_size = 128;
  // Train: shuffled each epoch, augmented, drop_last (the incomplete last batch is dropped, as
  // timm does for training). Eval: file order, no augmentation, the last batch may be short.
  bool train = true;
  uint64_t seed = 0;
};

struct Batch {
  int64_t epoch = 0, index = 0;
  Tensor images;                 // [B, C, H, W]
  std::vector<int32_t> labels;   // [B]
  std::vector<int64_t> samples;  // [B] dataset indices (ImageDataset::path(i) names the file)
};

// The epoch's sample order: Fisher-Yates over [0, n) with Rng(seed, Shuffle, epoch),
// for i = n-1 .. 1: swap(p[i], p[below(i+1)]).
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch);

class DataLoader {
 public:
  // `data` must outlive the loader. Throws Error(Config) for bad mean/std or batch size, and
  // for a training set smaller than one batch (drop_last would give empty epochs).
  DataLoader(const ImageDataset& data, const DataSettings& settings, LoaderOptions options);
  ~DataLoader();  // waits for a prefetch in flight
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const { return batches_; }
  int64_t batch_size() const { return options_.batch_size; }

  // Batch `index` of `epoch`, built now (OpenMP over samples when streaming or for batches of
  // 1 MiB of pixels or more). Pure: same arguments, same batch, for any thread count.
  // Throws Error(Data) when a streamed file no longer decodes.
  Batch make_batch(int64_t epoch, int64_t index) const;

  // Streaming interface: the cursor starts at (0, 0). next() returns the batch at the cursor,
  // moves it forward (to the next epoch after the last batch) and starts preparing the batch
  // after it on a background thread (single-threaded there, to stay off the training threads).
  void seek(int64_t epoch, int64_t index);
  Batch next();
  int64_t epoch() const { return epoch_; }
  int64_t index() const { return index_; }

 private:
  Batch assemble(int64_t epoch, int64_t index, bool parallel) const;
  std::shared_ptr<const std::vector<int64_t>> order(int64_t epoch) const;
  void drop_pending();

  const ImageDataset& data_;
  DataSettings settings_;
  LoaderOptions options_;
  int64_t batches_ = 0;
  std::vector<float> lut_;  // [C, 256]: (v / 255 - mean[c]) / std[c], as ToTensor + Normalize

  mutable std::mutex order_mutex_;
  mutable int64_t order_epoch_ = -1;
  mutable std::shared_ptr<const std::vector<int64_t>> order_;

  int64_t epoch_ = 0, index_ = 0;
  std::future<Batch> pending_;
  int64_t pending_epoch_ = -1, pending_index_ = -1;
};

}  // namespace vit
