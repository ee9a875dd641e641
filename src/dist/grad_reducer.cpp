#include "dist/grad_reducer.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "dist/agree.hpp"
#include "train/safetensors.hpp"

namespace vit {

GradReducer::GradReducer(Communicator& comm, std::vector<NamedParam> params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)) {
  std::reverse(params_.begin(), params_.end());
  for (const auto& p : params_) total_ += p.var.numel();
  bucket_ = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
}

void GradReducer::average() {
  if (!comm_.distributed() || total_ == 0) return;
  arena_.resize(static_cast<size_t>(total_));
  float* a = arena_.data();
  for (const auto& p : params_) {
    const int64_t n = p.var.numel();
    std::memcpy(a, p.var.grad().data(), static_cast<size_t>(n) * sizeof(float));
    a += n;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t off = 0; off < total_; off += bucket_)
    comm_.allreduce_sum(arena_.data() + off, std::min(bucket_, total_ - off));
  comm_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const float inv = 1.0f / static_cast<float>(comm_.size());
  a = arena_.data();
  for (const auto& p : params_) {
    const int64_t n = p.var.numel();
    float* g = p.var.grad().data();
    for (int64_t i = 0; i < n; ++i) g[i] = a[i] * inv;
    a += n;
  }
}

uint64_t params_fingerprint(const std::vector<NamedParam>& params) {
  uint64_t h = 0;
  for (const auto& p : params)
    h = xxh64(p.var.value().data(), static_cast<size_t>(p.var.numel()) * sizeof(float), h);
  return h;
}

void check_replicas_equal(Communicator& comm, const std::vector<NamedParam>& params, int64_t step) {
  if (!comm.distributed()) return;
  uint64_t lo = params_fingerprint(params), hi = lo;
  comm.allreduce_min(&lo, 1);
  comm.allreduce_max(&hi, 1);
  if (lo != hi)
    fail_together(comm, ErrorKind::Internal,
                  detail::concat("the ranks' parameters differ after step ", step, " (fingerprints ", hex64(lo), " .. ",
                                 hex64(hi), "): replicas diverged; the MPI reduction must return the same sums on "
                                 "every rank"));
}

}  // namespace vit
