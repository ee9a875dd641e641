// Gradient averaging for data-parallel training: after backward, every rank's parameter
// gradients are packed into one flat float arena (reverse registration order: the order
// backward finishes them), summed across ranks one bucket at a time with an in-place allreduce,
// and unpacked scaled by 1/R. The bucket list depends only on the parameter sizes, so every
// rank issues the same calls in the same order. Results are identical on every rank when the
// MPI library returns the same sum everywhere (always for 2 ranks; the trainer's periodic
// checksum catches a library that does not). No overlap with backward (milestone 1).
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/variable.hpp"
#include "dist/communicator.hpp"

namespace vit {

class GradReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = int64_t{4} << 20;
  GradReducer(Communicator& comm, std::vector<NamedParam> params, int64_t bucket_bytes = kDefaultBucketBytes);

  // grad := (sum over ranks of grad) / R for every parameter (a parameter without a gradient
  // buffer gets a zero one first). No-op on one rank.
  void average();

  int64_t numel() const { return total_; }
  int64_t buckets() const { return total_ == 0 ? 0 : (total_ + bucket_ - 1) / bucket_; }
  double comm_seconds() const { return comm_s_; }  // wall time inside allreduce, all calls

 private:
  Communicator& comm_;
  std::vector<NamedParam> params_;  // reverse registration order
  std::vector<float> arena_;
  int64_t total_ = 0, bucket_ = 0;  // floats
  double comm_s_ = 0;
};

// XXH64 over every parameter's bytes in registration order: a cheap replica fingerprint.
uint64_t params_fingerprint(const std::vector<NamedParam>& params);

// Collective: throws CollectiveError(Internal) on every rank when the fingerprints differ
// (replicas diverged). One rank: nothing.
void check_replicas_equal(Communicator& comm, const std::vector<NamedParam>& params, int64_t step);

}  // namespace vit
