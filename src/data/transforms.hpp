// Train-time augmentation on one cached uint8 HWC image: random-resized-crop (torchvision's
// algorithm), random crop after zero padding, horizontal flip, applied in that order. All
// randomness comes from the Rng passed in, which the loader keys by (seed, epoch, sample index).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.hpp"
#include "data/settings.hpp"

namespace vit {

struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// torchvision RandomResizedCrop.get_params: 10 tries of (area scale ~ U(scale), log-ratio ~
// U(log ratio)), w = round(sqrt(area * ratio)), h = round(sqrt(area / ratio)), Python rounding
// (half to even); the first box that fits gets a uniform position. Otherwise a centre crop with
// the ratio clamped into [ratio_min, ratio_max].
CropBox random_resized_crop_box(int64_t height, int64_t width, const AugmentSettings& a, Rng& rng);

// True when any augmentation is switched on.
bool augment_enabled(const AugmentSettings& a);

// Augments img (height x width x channels, HWC uint8) in place; `scratch` is reused storage.
// Random-resized-crop resizes the box back to the full size with `mode` (the same resampler as
// the cache); it works on the cached, already resized image, not on the original file.
void augment_image(uint8_t* img, int64_t height, int64_t width, int64_t channels,
                   const AugmentSettings& a, ResizeMode mode, Rng& rng, std::vector<uint8_t>& scratch);

}  // namespace vit
