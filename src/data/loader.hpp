// Batches from an ImageDataset: float [B, C, H, W] normalised by mean/std plus int32 labels.
// Training order is a Fisher-Yates shuffle driven by Rng(seed, Shuffle, epoch), augmentation by
// Rng(seed, Augment, epoch, file index), so batch (epoch, index) is a pure function of those
// numbers: a resume at (epoch, index) continues exactly, for any thread count. next() keeps one
// batch prepared ahead on a background thread. With several ranks (data-parallel training) each
// rank's loader yields its share of the same global batch (see shard_positions).
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
  // Data-parallel sharding: batch_size stays the GLOBAL batch, and this loader yields rank's
  // share of it (train: batch_size must be divisible by world). world == 1: the whole batch.
  int64_t rank = 0, world = 1;
};

// The positions (in the epoch's order) that `rank` of `world` takes from the global batch
// covering positions [start, start + count): start + rank + world * j, for each j with the
// position still inside the batch. This is PyTorch's DistributedSampler (indices[rank::world])
// applied per global batch, so the union over ranks is exactly the batch a single process
// uses at the same step; for count divisible by world every rank gets count / world samples.
std::vector<int64_t> shard_positions(int64_t start, int64_t count, int64_t rank, int64_t world);

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
