// Batch assembly and the one-batch-ahead prefetch. The background task runs through std::async,
// so an exception inside it is stored in the future and rethrown by next() on the caller's
// thread; nothing escapes a thread, and the destructor waits for the task.
#include "data/loader.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "data/transforms.hpp"

namespace vit {

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  Rng rng(seed, RngPurpose::Shuffle, static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<size_t>(i)], p[static_cast<size_t>(rng.below(static_cast<uint64_t>(i + 1)))]);
  return p;
}

std::vector<int64_t> shard_positions(int64_t start, int64_t count, int64_t rank, int64_t world) {
  VIT_CHECK(world >= 1 && rank >= 0 && rank < world && count >= 0, "shard_positions: rank ", rank, " of ", world,
            ", count ", count);
  std::vector<int64_t> pos;
  pos.reserve(static_cast<size_t>(count / world + 1));
  for (int64_t p = start + rank; p < start + count; p += world) pos.push_back(p);
  return pos;
}

DataLoader::DataLoader(const ImageDataset& data, const DataSettings& settings, LoaderOptions options)
    : data_(data), settings_(settings), options_(options) {
  const int64_t C = data_.channels(), n = data_.size();
  if (options_.batch_size <= 0) fail(ErrorKind::Config, "batch_size must be positive, got ", options_.batch_size);
  auto per_channel = [&](const std::vector<float>& v, const char* name) {
    if (v.size() != 1 && static_cast<int64_t>(v.size()) != C)
      fail(ErrorKind::Config, "data.", name, " needs 1 or ", C, " values, got ", v.size());
  };
  per_channel(settings_.mean, "mean");
  per_channel(settings_.std, "std");
  lut_.resize(static_cast<size_t>(C * 256));
  for (int64_t c = 0; c < C; ++c) {
    const float mean = settings_.mean[settings_.mean.size() == 1 ? 0 : static_cast<size_t>(c)];
    const float sd = settings_.std[settings_.std.size() == 1 ? 0 : static_cast<size_t>(c)];
    if (!(sd > 0.f)) fail(ErrorKind::Config, "data.std must be positive, got ", sd);
    for (int v = 0; v < 256; ++v)
      lut_[static_cast<size_t>(c * 256 + v)] = (static_cast<float>(v) / 255.0f - mean) / sd;
  }
  const int64_t B = options_.batch_size;
  if (options_.world < 1 || options_.rank < 0 || options_.rank >= options_.world)
    fail(ErrorKind::Config, "loader rank ", options_.rank, " of ", options_.world, " is out of range");
  if (options_.train && B % options_.world != 0)
    fail(ErrorKind::Config, "train.batch_size ", B, " (the global batch) must be divisible by the ", options_.world,
         " ranks");
  batches_ = options_.train ? n / B : (n + B - 1) / B;
  if (batches_ == 0)
    fail(ErrorKind::Config, "batch_size ", B, " is larger than the ", n, " usable training images of '",
         data_.folder().root, "' (the incomplete last batch is dropped in training)");
}

DataLoader::~DataLoader() { drop_pending(); }

std::shared_ptr<const std::vector<int64_t>> DataLoader::order(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(order_mutex_);
  if (order_epoch_ != epoch || !order_) {
    order_ = std::make_shared<const std::vector<int64_t>>(shuffled_order(data_.size(), options_.seed, epoch));
    order_epoch_ = epoch;
  }
  return order_;
}

Batch DataLoader::make_batch(int64_t epoch, int64_t index) const { return assemble(epoch, index, true); }

Batch DataLoader::assemble(int64_t epoch, int64_t index, bool parallel) const {
  VIT_CHECK(epoch >= 0 && index >= 0 && index < batches_, "batch ", index, " of epoch ", epoch,
            " out of range (", batches_, " batches per epoch)");
  const int64_t B_full = options_.batch_size, n = data_.size();
  const int64_t start = index * B_full;
  const int64_t B_global = std::min(B_full, n - start);
  const bool sharded = options_.world > 1;
  const std::vector<int64_t> pos =
      sharded ? shard_positions(start, B_global, options_.rank, options_.world) : std::vector<int64_t>();
  const int64_t B = sharded ? static_cast<int64_t>(pos.size()) : B_global;
  const int64_t H = data_.height(), W = data_.width(), C = data_.channels(), HW = H * W;

  Batch batch;
  batch.epoch = epoch;
  batch.index = index;
  batch.samples.resize(static_cast<size_t>(B));
  batch.labels.resize(static_cast<size_t>(B));
  if (options_.train) {
    const auto perm = order(epoch);
    for (int64_t b = 0; b < B; ++b)
      batch.samples[static_cast<size_t>(b)] = (*perm)[static_cast<size_t>(sharded ? pos[static_cast<size_t>(b)] : start + b)];
  } else {
    for (int64_t b = 0; b < B; ++b) batch.samples[static_cast<size_t>(b)] = sharded ? pos[static_cast<size_t>(b)] : start + b;
  }
  for (int64_t b = 0; b < B; ++b) batch.labels[static_cast<size_t>(b)] = data_.label(batch.samples[static_cast<size_t>(b)]);
  batch.images = Tensor::empty({B, C, H, W});

  const bool augment = options_.train && augment_enabled(settings_.augment);
  std::vector<std::string> errors(static_cast<size_t>(B));
  float* out = batch.images.data();
  auto one = [&](int64_t b) {  // must not throw: runs inside an OpenMP region
    const int64_t s = batch.samples[static_cast<size_t>(b)];
    std::vector<uint8_t> img(static_cast<size_t>(HW * C)), scratch;
    if (!data_.read(s, img.data(), errors[static_cast<size_t>(b)])) {
      if (errors[static_cast<size_t>(b)].empty()) errors[static_cast<size_t>(b)] = "decode failed";
      return;
    }
    if (augment) {
      Rng rng(options_.seed, RngPurpose::Augment, static_cast<uint64_t>(epoch),
              static_cast<uint64_t>(data_.source_index(s)));
      augment_image(img.data(), H, W, C, settings_.augment, settings_.resize, rng, scratch);
    }
    // HWC uint8 -> CHW float through the per-channel table.
    float* dst = out + b * C * HW;
    for (int64_t c = 0; c < C; ++c) {
      const float* lut = lut_.data() + c * 256;
      for (int64_t p = 0; p < HW; ++p) dst[c * HW + p] = lut[img[static_cast<size_t>(p * C + c)]];
    }
  };
  // Threads pay off only for real work (streaming decodes, big images); a cached 28x28 batch is
  // ~100 KB of table lookups, where waking an OpenMP team costs more than it saves.
  if (parallel && (!data_.cached() || B * C * HW >= (int64_t{1} << 20))) parallel_for(0, B, one);
  else for (int64_t b = 0; b < B; ++b) one(b);

  for (int64_t b = 0; b < B; ++b)
    if (!errors[static_cast<size_t>(b)].empty())
      fail(ErrorKind::Data, "image '", data_.path(batch.samples[static_cast<size_t>(b)]),
           "' decoded at start-up but now fails: ", errors[static_cast<size_t>(b)]);
  return batch;
}

void DataLoader::drop_pending() {
  if (!pending_.valid()) return;
  try {
    pending_.get();
  } catch (...) {
    // A batch nobody asked for any more: its error does not matter.
  }
  pending_epoch_ = pending_index_ = -1;
}

void DataLoader::seek(int64_t epoch, int64_t index) {
  VIT_CHECK(epoch >= 0 && index >= 0 && index < batches_, "seek to batch ", index, " of epoch ", epoch,
            " out of range (", batches_, " batches per epoch)");
  epoch_ = epoch;
  index_ = index;
}

Batch DataLoader::next() {
  Batch batch;
  if (pending_.valid() && pending_epoch_ == epoch_ && pending_index_ == index_) {
    pending_epoch_ = pending_index_ = -1;
    batch = pending_.get();  // rethrows the background task's error here, on our thread
  } else {
    drop_pending();
    batch = assemble(epoch_, index_, true);
  }
  if (++index_ == batches_) {
    index_ = 0;
    ++epoch_;
  }
  try {
    pending_ = std::async(std::launch::async, [this, e = epoch_, i = index_] { return assemble(e, i, false); });
    pending_epoch_ = epoch_;
    pending_index_ = index_;
  } catch (const std::system_error& e) {  // no thread available: carry on without prefetch
    spdlog::warn("data prefetch thread could not start ({}); loading batches synchronously", e.what());
  }
  return batch;
}

}  // namespace vit
