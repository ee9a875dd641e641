// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A stream is named by
// (seed, purpose, a, b): the same name always gives the same numbers, so shuffles, augmentation,
// dropout masks and FAVOR+ redraws are re-created from counters instead of stored state.
// `a` and `b` are free coordinates (epoch, sample index, step, layer, ...).
#pragma once
#include <array>
#include <cstdint>

namespace vit {

// What a stream is for; part of the key so two purposes never share numbers.
enum class RngPurpose : uint32_t {
  Init = 1,       // parameter initialisation
  Shuffle = 2,    // data order per epoch
  Augment = 3,    // per-sample augmentation
  Dropout = 4,    // dropout / drop-path masks per step
  Favor = 5,      // FAVOR+ projection draws
  Test = 99,
};

// One Philox4x32-10 block: 4 x 32-bit outputs for a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

class Rng {
 public:
  Rng(uint64_t seed, RngPurpose purpose, uint64_t a = 0, uint64_t b = 0);

  uint32_t next_u32();
  uint64_t next_u64();
  float uniform();                       // [0, 1), 24 random bits
  double uniform_double();               // [0, 1), 53 random bits
  float normal();                        // standard normal (Box-Muller, double inside)
  uint64_t below(uint64_t n);            // uniform integer in [0, n), unbiased
  // Where the stream is, so a stream can be resumed: skip(position()) on a fresh Rng.
  uint64_t position() const { return position_; }
  void skip(uint64_t n_u32);

 private:
  std::array<uint32_t, 2> key_;
  uint64_t stream_;       // (purpose, a, b) folded into 64 bits of the counter
  uint64_t position_ = 0; // number of u32 values consumed
  std::array<uint32_t, 4> block_{};
  uint64_t block_index_ = UINT64_MAX;  // which block block_ holds
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

// A 64-bit mixing hash (SplitMix64 finaliser); useful to fold coordinates into one key.
uint64_t mix64(uint64_t x);

}  // namespace vit
