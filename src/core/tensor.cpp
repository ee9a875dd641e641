#include "core/tensor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include <sys/mman.h>

namespace vit {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    VIT_CHECK(d >= 0, "negative dimension in shape ", shape);
    n *= d;
  }
  return n;
}

namespace allocator {
namespace {

// Size classes: exact multiples of 64 bytes up to 4 KiB, then powers of two split in four
// (so at most 25% waste), which keeps the number of distinct free lists small.
size_t size_class(size_t bytes) {
  bytes = std::max<size_t>(bytes, 64);
  if (bytes <= 4096) return (bytes + 63) / 64 * 64;
  size_t p = 4096;
  while (p * 2 < bytes) p *= 2;
  const size_t step = p / 4;
  return (bytes + step - 1) / step * step;
}

struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;  // size class -> block
  Stats stats;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destruction
  return *c;
}

// Blocks of a batch's activations (1-6 MiB for W1) start on a 2 MiB boundary and ask for
// transparent huge pages (Debian's default THP mode is madvise): a training step streams
// ~100 MiB through such buffers, much of it in strided passes (attention reads 64-byte slivers
// of rows 768 bytes apart), and with 4 KiB pages those miss the TLB. W1 step ~2-3% faster.
void* os_allocate(size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  if (bytes < kHugePage) return std::aligned_alloc(64, bytes);
  void* block = nullptr;
  if (posix_memalign(&block, kHugePage, bytes) != 0) return nullptr;
#ifdef MADV_HUGEPAGE
  madvise(block, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // a hint: failure is harmless
#endif
  return block;
}

void give_back(void* block, size_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.free_blocks.emplace(bytes, block);
  c.stats.bytes_in_use -= static_cast<int64_t>(bytes);
  c.stats.bytes_cached += static_cast<int64_t>(bytes);
}

}  // namespace

std::shared_ptr<float> allocate(int64_t numel) {
  const size_t bytes = size_class(static_cast<size_t>(numel) * sizeof(float));
  Cache& c = cache();
  void* block = nullptr;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end()) {
      block = it->second;
      c.free_blocks.erase(it);
      c.stats.bytes_cached -= static_cast<int64_t>(bytes);
    }
    c.stats.bytes_in_use += static_cast<int64_t>(bytes);
    c.stats.peak_bytes_in_use = std::max(c.stats.peak_bytes_in_use, c.stats.bytes_in_use);
    if (!block) ++c.stats.os_allocations;
  }
  if (!block) {
    block = os_allocate(bytes);
    if (!block) {
      release_cached();
      block = os_allocate(bytes);
    }
    if (!block) {
      std::lock_guard<std::mutex> lock(c.mutex);
      c.stats.bytes_in_use -= static_cast<int64_t>(bytes);
      throw std::bad_alloc();
    }
  }
  return std::shared_ptr<float>(static_cast<float*>(block), [bytes](float* p) { give_back(p, bytes); });
}

Stats stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void release_cached() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [bytes, block] : c.free_blocks) std::free(block);
  c.free_blocks.clear();
  c.stats.bytes_cached = 0;
}

void reset_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
}

}  // namespace allocator

Tensor Tensor::empty(const Shape& shape) {
  Tensor t;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.storage_ = allocator::allocate(t.numel_);
  return t;
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.0f); }

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  Tensor t = empty(shape);
  VIT_CHECK(static_cast<int64_t>(values.size()) == t.numel_, "Tensor::from: ", values.size(),
            " values for shape ", shape);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

int64_t Tensor::size(int64_t i) const {
  const int64_t d = dim();
  if (i < 0) i += d;
  VIT_CHECK(i >= 0 && i < d, "axis ", i, " out of range for shape ", shape_);
  return shape_[static_cast<size_t>(i)];
}

Tensor Tensor::reshape(const Shape& shape) const {
  VIT_CHECK(shape_numel(shape) == numel_, "reshape ", shape_, " -> ", shape, ": element counts differ");
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_);
  if (numel_) std::memcpy(t.data(), data(), static_cast<size_t>(numel_) * sizeof(float));
  return t;
}

void Tensor::fill(float value) { std::fill(data(), data() + numel_, value); }

void Tensor::copy_from(const Tensor& other) {
  VIT_CHECK(other.numel_ == numel_, "copy_from: ", other.shape_, " into ", shape_);
  if (numel_) std::memcpy(data(), other.data(), static_cast<size_t>(numel_) * sizeof(float));
}

std::vector<float> Tensor::to_vector() const { return std::vector<float>(data(), data() + numel_); }

}  // namespace vit
