// Contiguous row-major float32 tensor: a shape plus shared storage. Storage comes from a
// caching allocator (blocks are recycled by size), so the training step does not call malloc
// for every activation. Copies share storage; clone() makes a deep copy. No strides, no views
// with offsets: kernels see plain contiguous buffers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace vit {

int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Uninitialised contents (from the cache).
  static Tensor empty(const Shape& shape);
  static Tensor zeros(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor from(const Shape& shape, const std::vector<float>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  // Size of axis i; negative i counts from the end.
  int64_t size(int64_t i) const;
  int64_t numel() const { return numel_; }

  float* data() { return storage_.get(); }
  const float* data() const { return storage_.get(); }
  float& operator[](int64_t i) { return storage_.get()[i]; }
  float operator[](int64_t i) const { return storage_.get()[i]; }

  // Same storage, new shape with the same element count.
  Tensor reshape(const Shape& shape) const;
  Tensor clone() const;
  void fill(float value);
  void copy_from(const Tensor& other);  // same numel required
  std::vector<float> to_vector() const;

 private:
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<float> storage_;
};

// The caching allocator behind Tensor. Blocks are 64-byte aligned and rounded up to size
// classes; freed blocks go back to a per-class free list instead of the OS.
namespace allocator {
std::shared_ptr<float> allocate(int64_t numel);
struct Stats {
  int64_t bytes_in_use = 0;
  int64_t bytes_cached = 0;
  int64_t peak_bytes_in_use = 0;
  int64_t os_allocations = 0;
};
Stats stats();
void release_cached();  // hand cached blocks back to the OS
void reset_peak();
}  // namespace allocator

}  // namespace vit
